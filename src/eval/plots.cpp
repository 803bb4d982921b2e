#include "eval/plots.h"

#include <png.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "common/error.h"
#include "common/files.h"

namespace peft::eval {

// ---------------------------------------------------------------------------------------------------------
// Image

Image::Image(int w, int h, Rgb fill) : width(w), height(h) {
  if (w < 0 || h < 0) throw std::invalid_argument("Image: negative size");
  pixels.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  for (size_t i = 0; i < pixels.size(); i += 3) {
    pixels[i] = fill.r;
    pixels[i + 1] = fill.g;
    pixels[i + 2] = fill.b;
  }
}

Rgb Image::at(int x, int y) const {
  if (x < 0 || y < 0 || x >= width || y >= height)
    throw std::out_of_range("Image::at(" + std::to_string(x) + ", " + std::to_string(y) + ") outside " +
                            std::to_string(width) + "x" + std::to_string(height));
  const size_t i = (static_cast<size_t>(y) * width + x) * 3;
  return {pixels[i], pixels[i + 1], pixels[i + 2]};
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const size_t i = (static_cast<size_t>(y) * width + x) * 3;
  pixels[i] = c.r;
  pixels[i + 1] = c.g;
  pixels[i + 2] = c.b;
}

void Image::fill_rect(int x, int y, int w, int h, Rgb c) {
  const int xa = std::max(x, 0), xb = std::min(x + w, width);
  const int ya = std::max(y, 0), yb = std::min(y + h, height);
  for (int yy = ya; yy < yb; ++yy)
    for (int xx = xa; xx < xb; ++xx) set(xx, yy, c);
}

void Image::hline(int x0, int x1, int y, Rgb c) {
  if (x0 > x1) std::swap(x0, x1);
  fill_rect(x0, y, x1 - x0 + 1, 1, c);
}

void Image::vline(int x, int y0, int y1, Rgb c) {
  if (y0 > y1) std::swap(y0, y1);
  fill_rect(x, y0, 1, y1 - y0 + 1, c);
}

// ---------------------------------------------------------------------------------------------------------
// PNG

namespace {

void png_append(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), length);
}
void png_flush_noop(png_structp) {}

// Kept free of C++ objects with destructors between setjmp and any longjmp (libpng's error path),
// which would otherwise be skipped.
bool encode_png_raw(const Image& image, png_bytep* rows, std::string* out, char* error, size_t error_size) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) {
    std::snprintf(error, error_size, "png_create_write_struct failed");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(error, error_size, "png_create_info_struct failed");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::snprintf(error, error_size, "libpng error while encoding");
    return false;
  }
  png_set_write_fn(png, out, png_append, png_flush_noop);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::string encode_png(const Image& image) {
  if (image.width <= 0 || image.height <= 0) throw std::invalid_argument("encode_png: empty image");
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int y = 0; y < image.height; ++y)
    rows[y] = const_cast<png_bytep>(image.pixels.data() + static_cast<size_t>(y) * image.width * 3);
  std::string out;
  char error[128] = {0};
  if (!encode_png_raw(image, rows.data(), &out, error, sizeof(error))) throw std::runtime_error(error);
  return out;
}

void write_png(const std::filesystem::path& path, const Image& image) { write_file_atomic(path, encode_png(image)); }

Image read_png(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    fail_input(where(path.string()) + "not a readable PNG (" + img.message + ")");
  img.format = PNG_FORMAT_RGB;
  Image out(static_cast<int>(img.width), static_cast<int>(img.height));
  if (!png_image_finish_read(&img, nullptr, out.pixels.data(), 0, nullptr)) {
    const std::string message = img.message;
    png_image_free(&img);
    fail_input(where(path.string()) + "corrupt PNG (" + message + ")");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Font: the classic public-domain 5x7 LCD font, printable ASCII 32..126. Five column bytes per glyph,
// bit 0 = top row.

namespace {
constexpr std::array<uint8_t, 95 * 5> kFont5x7 = {
    0x00, 0x00, 0x00, 0x00, 0x00,  // ' '
    0x00, 0x00, 0x5F, 0x00, 0x00,  // !
    0x00, 0x07, 0x00, 0x07, 0x00,  // "
    0x14, 0x7F, 0x14, 0x7F, 0x14,  // #
    0x24, 0x2A, 0x7F, 0x2A, 0x12,  // $
    0x23, 0x13, 0x08, 0x64, 0x62,  // %
    0x36, 0x49, 0x55, 0x22, 0x50,  // &
    0x00, 0x05, 0x03, 0x00, 0x00,  // '
    0x00, 0x1C, 0x22, 0x41, 0x00,  // (
    0x00, 0x41, 0x22, 0x1C, 0x00,  // )
    0x14, 0x08, 0x3E, 0x08, 0x14,  // *
    0x08, 0x08, 0x3E, 0x08, 0x08,  // +
    0x00, 0x50, 0x30, 0x00, 0x00,  // ,
    0x08, 0x08, 0x08, 0x08, 0x08,  // -
    0x00, 0x60, 0x60, 0x00, 0x00,  // .
    0x20, 0x10, 0x08, 0x04, 0x02,  // /
    0x3E, 0x51, 0x49, 0x45, 0x3E,  // 0
    0x00, 0x42, 0x7F, 0x40, 0x00,  // 1
    0x42, 0x61, 0x51, 0x49, 0x46,  // 2
    0x21, 0x41, 0x45, 0x4B, 0x31,  // 3
    0x18, 0x14, 0x12, 0x7F, 0x10,  // 4
    0x27, 0x45, 0x45, 0x45, 0x39,  // 5
    0x3C, 0x4A, 0x49, 0x49, 0x30,  // 6
    0x01, 0x71, 0x09, 0x05, 0x03,  // 7
    0x36, 0x49, 0x49, 0x49, 0x36,  // 8
    0x06, 0x49, 0x49, 0x29, 0x1E,  // 9
    0x00, 0x36, 0x36, 0x00, 0x00,  // :
    0x00, 0x56, 0x36, 0x00, 0x00,  // ;
    0x08, 0x14, 0x22, 0x41, 0x00,  // <
    0x14, 0x14, 0x14, 0x14, 0x14,  // =
    0x00, 0x41, 0x22, 0x14, 0x08,  // >
    0x02, 0x01, 0x51, 0x09, 0x06,  // ?
    0x32, 0x49, 0x79, 0x41, 0x3E,  // @
    0x7E, 0x11, 0x11, 0x11, 0x7E,  // A
    0x7F, 0x49, 0x49, 0x49, 0x36,  // B
    0x3E, 0x41, 0x41, 0x41, 0x22,  // C
    0x7F, 0x41, 0x41, 0x22, 0x1C,  // D
    0x7F, 0x49, 0x49, 0x49, 0x41,  // E
    0x7F, 0x09, 0x09, 0x09, 0x01,  // F
    0x3E, 0x41, 0x49, 0x49, 0x7A,  // G
    0x7F, 0x08, 0x08, 0x08, 0x7F,  // H
    0x00, 0x41, 0x7F, 0x41, 0x00,  // I
    0x20, 0x40, 0x41, 0x3F, 0x01,  // J
    0x7F, 0x08, 0x14, 0x22, 0x41,  // K
    0x7F, 0x40, 0x40, 0x40, 0x40,  // L
    0x7F, 0x02, 0x0C, 0x02, 0x7F,  // M
    0x7F, 0x04, 0x08, 0x10, 0x7F,  // N
    0x3E, 0x41, 0x41, 0x41, 0x3E,  // O
    0x7F, 0x09, 0x09, 0x09, 0x06,  // P
    0x3E, 0x41, 0x51, 0x21, 0x5E,  // Q
    0x7F, 0x09, 0x19, 0x29, 0x46,  // R
    0x46, 0x49, 0x49, 0x49, 0x31,  // S
    0x01, 0x01, 0x7F, 0x01, 0x01,  // T
    0x3F, 0x40, 0x40, 0x40, 0x3F,  // U
    0x1F, 0x20, 0x40, 0x20, 0x1F,  // V
    0x3F, 0x40, 0x38, 0x40, 0x3F,  // W
    0x63, 0x14, 0x08, 0x14, 0x63,  // X
    0x07, 0x08, 0x70, 0x08, 0x07,  // Y
    0x61, 0x51, 0x49, 0x45, 0x43,  // Z
    0x00, 0x7F, 0x41, 0x41, 0x00,  // [
    0x02, 0x04, 0x08, 0x10, 0x20,  // backslash
    0x00, 0x41, 0x41, 0x7F, 0x00,  // ]
    0x04, 0x02, 0x01, 0x02, 0x04,  // ^
    0x40, 0x40, 0x40, 0x40, 0x40,  // _
    0x00, 0x01, 0x02, 0x04, 0x00,  // `
    0x20, 0x54, 0x54, 0x54, 0x78,  // a
    0x7F, 0x48, 0x44, 0x44, 0x38,  // b
    0x38, 0x44, 0x44, 0x44, 0x20,  // c
    0x38, 0x44, 0x44, 0x48, 0x7F,  // d
    0x38, 0x54, 0x54, 0x54, 0x18,  // e
    0x08, 0x7E, 0x09, 0x01, 0x02,  // f
    0x0C, 0x52, 0x52, 0x52, 0x3E,  // g
    0x7F, 0x08, 0x04, 0x04, 0x78,  // h
    0x00, 0x44, 0x7D, 0x40, 0x00,  // i
    0x20, 0x40, 0x44, 0x3D, 0x00,  // j
    0x7F, 0x10, 0x28, 0x44, 0x00,  // k
    0x00, 0x41, 0x7F, 0x40, 0x00,  // l
    0x7C, 0x04, 0x18, 0x04, 0x78,  // m
    0x7C, 0x08, 0x04, 0x04, 0x78,  // n
    0x38, 0x44, 0x44, 0x44, 0x38,  // o
    0x7C, 0x14, 0x14, 0x14, 0x08,  // p
    0x08, 0x14, 0x14, 0x18, 0x7C,  // q
    0x7C, 0x08, 0x04, 0x04, 0x08,  // r
    0x48, 0x54, 0x54, 0x54, 0x20,  // s
    0x04, 0x3F, 0x44, 0x40, 0x20,  // t
    0x3C, 0x40, 0x40, 0x20, 0x7C,  // u
    0x1C, 0x20, 0x40, 0x20, 0x1C,  // v
    0x3C, 0x40, 0x30, 0x40, 0x3C,  // w
    0x44, 0x28, 0x10, 0x28, 0x44,  // x
    0x0C, 0x50, 0x50, 0x50, 0x3C,  // y
    0x44, 0x64, 0x54, 0x4C, 0x44,  // z
    0x00, 0x08, 0x36, 0x41, 0x00,  // {
    0x00, 0x00, 0x7F, 0x00, 0x00,  // |
    0x00, 0x41, 0x36, 0x08, 0x00,  // }
    0x08, 0x04, 0x08, 0x10, 0x08,  // ~
};
}  // namespace

bool glyph_pixel(char c, int col, int row) {
  if (col < 0 || col >= kGlyphWidth || row < 0 || row >= kGlyphHeight) return false;
  int code = static_cast<unsigned char>(c);
  if (code < 32 || code > 126) code = '?';
  return (kFont5x7[static_cast<size_t>(code - 32) * 5 + col] >> row) & 1;
}

int text_width(const std::string& text, int scale) {
  if (text.empty()) return 0;
  return (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale, bool vertical) {
  const int total = text_width(text, scale);
  for (size_t k = 0; k < text.size(); ++k) {
    const int offset = static_cast<int>(k) * kGlyphAdvance * scale;  // along the reading direction
    for (int col = 0; col < kGlyphWidth; ++col)
      for (int row = 0; row < kGlyphHeight; ++row) {
        if (!glyph_pixel(text[k], col, row)) continue;
        // Horizontal: glyph pixel (col, row) -> (x + offset + col, y + row). Vertical (CCW rotation):
        // reading direction runs up the image, glyph tops face left.
        const int px = vertical ? x + row * scale : x + offset + col * scale;
        const int py = vertical ? y + total - 1 - (offset + col * scale) - (scale - 1) : y + row * scale;
        image.fill_rect(px, py, scale, scale, color);
      }
  }
}

std::string ellipsize(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  if (max_chars <= 2) return text.substr(0, max_chars);
  return text.substr(0, max_chars - 2) + "..";
}

// ---------------------------------------------------------------------------------------------------------
// Colour map

Rgb viridis(double t) {
  if (std::isnan(t)) return kGrey;
  // matplotlib's viridis sampled at t = 0, 1/8, ..., 1.
  static constexpr std::array<std::array<double, 3>, 9> kAnchors = {{{68, 1, 84},
                                                                     {71, 45, 123},
                                                                     {59, 82, 139},
                                                                     {44, 114, 142},
                                                                     {33, 145, 140},
                                                                     {40, 174, 128},
                                                                     {94, 201, 98},
                                                                     {173, 220, 48},
                                                                     {253, 231, 37}}};
  t = std::clamp(t, 0.0, 1.0);
  const double pos = t * 8.0;
  const int i = std::min(static_cast<int>(pos), 7);
  const double f = pos - i;
  auto mix = [&](int ch) {
    return static_cast<uint8_t>(std::lround(kAnchors[i][ch] + f * (kAnchors[i + 1][ch] - kAnchors[i][ch])));
  };
  return {mix(0), mix(1), mix(2)};
}

// ---------------------------------------------------------------------------------------------------------
// Heatmap

namespace {
constexpr int kMargin = 10;
constexpr int kTitleScale = 2;
constexpr size_t kRowLabelChars = 48;
constexpr size_t kColLabelChars = 24;
constexpr int kColorbarGap = 14;
constexpr int kColorbarWidth = 16;

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", v);
  return buf;
}

void check_matrix(const std::vector<std::vector<double>>& matrix, const std::vector<std::string>& row_labels,
                  const std::vector<std::string>& col_labels) {
  if (matrix.empty() || matrix[0].empty()) throw std::invalid_argument("render_heatmap: empty matrix");
  for (const auto& row : matrix)
    if (row.size() != matrix[0].size()) throw std::invalid_argument("render_heatmap: ragged matrix");
  if (row_labels.size() != matrix.size())
    throw std::invalid_argument("render_heatmap: " + std::to_string(row_labels.size()) + " row labels for " +
                                std::to_string(matrix.size()) + " rows");
  if (col_labels.size() != matrix[0].size())
    throw std::invalid_argument("render_heatmap: " + std::to_string(col_labels.size()) + " column labels for " +
                                std::to_string(matrix[0].size()) + " columns");
}
}  // namespace

Rgb HeatmapLayout::color_of(double value) const {
  if (std::isnan(value)) return kGrey;
  if (!(vmax > vmin)) return viridis(0.5);
  return viridis((value - vmin) / (vmax - vmin));
}

HeatmapLayout heatmap_layout(const std::vector<std::vector<double>>& matrix,
                             const std::vector<std::string>& row_labels,
                             const std::vector<std::string>& col_labels, const std::string& title,
                             std::optional<std::pair<double, double>> value_range) {
  check_matrix(matrix, row_labels, col_labels);
  const int rows = static_cast<int>(matrix.size());
  const int cols = static_cast<int>(matrix[0].size());
  HeatmapLayout L;
  if (value_range) {
    L.vmin = value_range->first;
    L.vmax = value_range->second;
  } else {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& row : matrix)
      for (double v : row)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    L.vmin = std::isfinite(lo) ? lo : 0.0;
    L.vmax = std::isfinite(hi) ? hi : 1.0;
  }
  // Cells: 12 px rows keep a 7 px label legible (~60 tasks -> 720 px); columns wider when there are few.
  L.cell_h = rows <= 150 ? 12 : 8;
  L.cell_w = cols <= 16 ? 28 : (cols <= 64 ? 14 : 9);
  int row_label_w = 0;
  for (const auto& s : row_labels) row_label_w = std::max(row_label_w, text_width(ellipsize(s, kRowLabelChars)));
  int col_label_h = 0;
  for (const auto& s : col_labels) col_label_h = std::max(col_label_h, text_width(ellipsize(s, kColLabelChars)));
  const int title_h = title.empty() ? 0 : kGlyphHeight * kTitleScale + 10;
  L.x0 = kMargin + row_label_w + (row_label_w > 0 ? 6 : 0);
  L.y0 = kMargin + title_h;
  const int grid_w = cols * L.cell_w, grid_h = rows * L.cell_h;
  L.colorbar_x = L.x0 + grid_w + kColorbarGap;
  L.colorbar_y = L.y0;
  L.colorbar_w = kColorbarWidth;
  L.colorbar_h = std::max(grid_h, 100);
  const int bar_label_w = std::max({text_width(format_value(L.vmin)), text_width(format_value(L.vmax)),
                                    text_width(format_value((L.vmin + L.vmax) / 2))});
  L.width = std::max(L.colorbar_x + L.colorbar_w + 6 + bar_label_w + kMargin,
                     2 * kMargin + text_width(title, kTitleScale));
  L.height = L.y0 + std::max(grid_h + (col_label_h > 0 ? 4 + col_label_h : 0), L.colorbar_h) + kMargin;
  return L;
}

Image render_heatmap(const std::vector<std::vector<double>>& matrix, const std::vector<std::string>& row_labels,
                     const std::vector<std::string>& col_labels, const std::string& title,
                     std::optional<std::pair<double, double>> value_range) {
  const HeatmapLayout L = heatmap_layout(matrix, row_labels, col_labels, title, value_range);
  Image img(L.width, L.height);
  const int rows = static_cast<int>(matrix.size());
  const int cols = static_cast<int>(matrix[0].size());
  if (!title.empty()) draw_text(img, (L.width - text_width(title, kTitleScale)) / 2, kMargin, title, kBlack, kTitleScale);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      img.fill_rect(L.x0 + j * L.cell_w, L.y0 + i * L.cell_h, L.cell_w, L.cell_h, L.color_of(matrix[i][j]));
  // Row labels right-aligned against the grid, vertically centred on their row.
  for (int i = 0; i < rows; ++i) {
    const std::string s = ellipsize(row_labels[i], kRowLabelChars);
    draw_text(img, L.x0 - 6 - text_width(s), L.y0 + i * L.cell_h + (L.cell_h - kGlyphHeight) / 2, s, kBlack);
  }
  // Column labels below the grid, vertical (bottom-to-top) and top-aligned, centred on their column.
  const int grid_bottom = L.y0 + rows * L.cell_h;
  for (int j = 0; j < cols; ++j) {
    const std::string s = ellipsize(col_labels[j], kColLabelChars);
    draw_text(img, L.x0 + j * L.cell_w + (L.cell_w - kGlyphHeight) / 2, grid_bottom + 4, s, kBlack, 1, true);
  }
  // Colour bar: vmax at the top, vmin at the bottom, with labels at both ends and the middle.
  for (int y = 0; y < L.colorbar_h; ++y) {
    const double t = L.colorbar_h > 1 ? 1.0 - static_cast<double>(y) / (L.colorbar_h - 1) : 0.5;
    img.hline(L.colorbar_x, L.colorbar_x + L.colorbar_w - 1, L.colorbar_y + y, viridis(t));
  }
  const int lx = L.colorbar_x + L.colorbar_w + 6;
  draw_text(img, lx, L.colorbar_y, format_value(L.vmax), kBlack);
  draw_text(img, lx, L.colorbar_y + (L.colorbar_h - kGlyphHeight) / 2, format_value((L.vmin + L.vmax) / 2), kBlack);
  draw_text(img, lx, L.colorbar_y + L.colorbar_h - kGlyphHeight, format_value(L.vmin), kBlack);
  return img;
}

void write_heatmap_png(const std::filesystem::path& path, const std::vector<std::vector<double>>& matrix,
                       const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                       const std::string& title, std::optional<std::pair<double, double>> value_range) {
  write_png(path, render_heatmap(matrix, row_labels, col_labels, title, value_range));
}

// ---------------------------------------------------------------------------------------------------------
// Bar chart

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) throw std::invalid_argument("nice_ticks: non-finite range");
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) hi = lo + (lo == 0.0 ? 1.0 : std::abs(lo) * 0.1);
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
  const long first = static_cast<long>(std::floor(lo / step + 1e-9));
  const long last = static_cast<long>(std::ceil(hi / step - 1e-9));
  std::vector<double> ticks;
  for (long k = first; k <= last; ++k) ticks.push_back(k * step);
  return ticks;
}

Image render_bar_chart(const std::vector<std::string>& names, const std::vector<double>& means,
                       const std::vector<double>& stds, const std::string& y_label, const std::string& title) {
  if (names.empty()) throw std::invalid_argument("render_bar_chart: no bars");
  if (means.size() != names.size() || stds.size() != names.size())
    throw std::invalid_argument("render_bar_chart: names, means and stds differ in length");
  const int n = static_cast<int>(names.size());
  const int width = kBarLeftMargin + n * kBarSlot + kBarRightMargin;
  const int height = kBarTopMargin + kBarPlotHeight + kBarBottomMargin;
  Image img(width, height);

  double lo = 0.0, hi = 0.0;
  for (int i = 0; i < n; ++i) {
    const double s = std::isfinite(stds[i]) ? std::abs(stds[i]) : 0.0;
    if (!std::isfinite(means[i])) continue;
    lo = std::min(lo, means[i] - s);
    hi = std::max(hi, means[i] + s);
  }
  const std::vector<double> ticks = nice_ticks(lo, hi);
  // Value labels share one number of decimals (48.2 / 44.0, not 48.2 / 44), picked from the magnitude.
  double max_abs = 0.0;
  for (double m : means)
    if (std::isfinite(m)) max_abs = std::max(max_abs, std::abs(m));
  const int decimals = max_abs >= 10.0 ? 1 : max_abs >= 1.0 ? 2 : 3;
  const double ymin = ticks.front(), ymax = ticks.back();
  const int plot_left = kBarLeftMargin, plot_right = kBarLeftMargin + n * kBarSlot;
  const int plot_top = kBarTopMargin, plot_bottom = kBarTopMargin + kBarPlotHeight;
  auto y_of = [&](double v) {
    return plot_bottom - static_cast<int>(std::lround((v - ymin) / (ymax - ymin) * kBarPlotHeight));
  };

  if (!title.empty()) draw_text(img, (width - text_width(title, kTitleScale)) / 2, 12, title, kBlack, kTitleScale);
  // Grid lines and tick labels.
  const Rgb grid{225, 225, 225};
  for (double t : ticks) {
    const int y = y_of(t);
    img.hline(plot_left, plot_right, y, grid);
    img.hline(plot_left - 5, plot_left - 1, y, kBlack);
    const std::string s = format_value(std::abs(t) < 1e-12 ? 0.0 : t);
    draw_text(img, plot_left - 8 - text_width(s), y - kGlyphHeight / 2, s, kBlack);
  }
  // Bars, error bars, value labels, names.
  for (int i = 0; i < n; ++i) {
    const int cx = plot_left + i * kBarSlot + kBarSlot / 2;
    const Rgb color = viridis(n > 1 ? 0.15 + 0.7 * i / (n - 1) : 0.35);
    if (std::isfinite(means[i])) {
      const int y_base = y_of(0.0), y_top = y_of(means[i]);
      img.fill_rect(cx - kBarWidth / 2, std::min(y_base, y_top), kBarWidth, std::abs(y_base - y_top) + 1, color);
      int label_y = std::min(y_top, y_base);
      const double s = std::isfinite(stds[i]) ? std::abs(stds[i]) : 0.0;
      if (s > 0) {
        const int ya = y_of(means[i] - s), yb = y_of(means[i] + s);
        img.vline(cx, ya, yb, kBlack);
        img.hline(cx - 5, cx + 5, ya, kBlack);
        img.hline(cx - 5, cx + 5, yb, kBlack);
        label_y = std::min(label_y, std::min(ya, yb));
      }
      char v_buf[48];
      std::snprintf(v_buf, sizeof(v_buf), "%.*f", decimals, means[i]);
      const std::string v = v_buf;
      draw_text(img, cx - text_width(v) / 2, label_y - kGlyphHeight - 3, v, kBlack);
    }
    const std::string name = ellipsize(names[i], 17);
    draw_text(img, cx - kGlyphHeight / 2, plot_bottom + 6, name, kBlack, 1, true);
  }
  // Axes drawn last so bars do not cover them.
  img.vline(plot_left - 1, plot_top, plot_bottom, kBlack);
  img.hline(plot_left - 1, plot_right, y_of(std::clamp(0.0, ymin, ymax)), kBlack);
  if (!y_label.empty()) {
    const std::string s = ellipsize(y_label, kBarPlotHeight / kGlyphAdvance);
    draw_text(img, 6, plot_top + (kBarPlotHeight - text_width(s)) / 2, s, kBlack, 1, true);
  }
  return img;
}

void write_bar_chart_png(const std::filesystem::path& path, const std::vector<std::string>& names,
                         const std::vector<double>& means, const std::vector<double>& stds,
                         const std::string& y_label, const std::string& title) {
  write_png(path, render_bar_chart(names, means, stds, y_label, title));
}

}  // namespace peft::eval
