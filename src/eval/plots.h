// Figures for the paper-style report: the Poly/MHR task x skill routing heatmap and the per-variant bar chart.
// Plain RGB rasters written as PNG through libpng; labels are drawn with an embedded 5x7 bitmap font so the
// figures need no font files at run time. No LibTorch here: callers pass plain std::vector data.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace peft::eval {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};
inline constexpr Rgb kGrey{128, 128, 128};

// 8-bit RGB image, row-major, 3 bytes per pixel. Drawing outside the image is clipped silently.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3

  Image() = default;
  Image(int width, int height, Rgb fill = kWhite);
  Rgb at(int x, int y) const;            // throws std::out_of_range outside the image
  void set(int x, int y, Rgb c);         // clipped
  void fill_rect(int x, int y, int w, int h, Rgb c);  // clipped
  void hline(int x0, int x1, int y, Rgb c);
  void vline(int x, int y0, int y1, Rgb c);
};

// PNG (8-bit RGB, no interlace) bytes of `image`, encoded by libpng.
std::string encode_png(const Image& image);
// Writes the PNG atomically (temp file + rename via write_file_atomic); creates parent directories.
void write_png(const std::filesystem::path& path, const Image& image);
// Reads any PNG libpng understands, converted to 8-bit RGB (alpha dropped, palette/grey expanded).
// A missing or corrupt file is an InputError naming it.
Image read_png(const std::filesystem::path& path);

// ---- Text: embedded 5x7 font (printable ASCII 32..126; other bytes draw as '?'). ----
inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 7;
inline constexpr int kGlyphAdvance = 6;  // glyph + 1 px spacing
// Whether pixel (col, row) of the glyph for `c` is set; col in [0,5), row in [0,7) (row 0 = top).
bool glyph_pixel(char c, int col, int row);
// Width in pixels of `text` drawn at `scale` (no trailing spacing); height is kGlyphHeight * scale.
int text_width(const std::string& text, int scale = 1);
// Draws `text` with its top-left corner at (x, y). vertical = rotated 90 degrees counter-clockwise
// (reads bottom to top, as matplotlib's rotation=90 column labels): then (x, y) is the top-left of the
// rotated box, whose width is kGlyphHeight*scale and height text_width(text, scale).
void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale = 1,
               bool vertical = false);
// `text` shortened to at most max_chars, ending in ".." when cut (long SuperNI task names).
std::string ellipsize(const std::string& text, size_t max_chars);

// ---- Colour map ----
// Viridis (matplotlib) approximated by linear interpolation between its 9 evenly spaced anchors;
// t is clamped to [0, 1]; NaN maps to grey.
Rgb viridis(double t);

// ---- Heatmap ----
// Where render_heatmap puts things, so callers/tests can locate a cell. Cell (i, j) spans
// [x0 + j*cell_w, x0 + (j+1)*cell_w) x [y0 + i*cell_h, y0 + (i+1)*cell_h).
struct HeatmapLayout {
  int width = 0, height = 0;
  int x0 = 0, y0 = 0, cell_w = 0, cell_h = 0;
  int colorbar_x = 0, colorbar_y = 0, colorbar_w = 0, colorbar_h = 0;
  double vmin = 0.0, vmax = 1.0;  // the value range the colour map spans
  // Colour of a value under this layout's range: viridis((v - vmin) / (vmax - vmin)); a constant
  // matrix (vmax == vmin) maps to the middle of the map.
  Rgb color_of(double value) const;
};
HeatmapLayout heatmap_layout(const std::vector<std::vector<double>>& matrix,
                             const std::vector<std::string>& row_labels,
                             const std::vector<std::string>& col_labels, const std::string& title,
                             std::optional<std::pair<double, double>> value_range = std::nullopt);
// Rows = tasks, columns = skills (or skill x head). The colour map spans the finite min..max of the
// matrix unless value_range is given (e.g. {0, 1} for routing probabilities); NaN cells are grey.
// Throws std::invalid_argument on an empty or ragged matrix or label counts that do not match.
Image render_heatmap(const std::vector<std::vector<double>>& matrix, const std::vector<std::string>& row_labels,
                     const std::vector<std::string>& col_labels, const std::string& title,
                     std::optional<std::pair<double, double>> value_range = std::nullopt);
void write_heatmap_png(const std::filesystem::path& path, const std::vector<std::vector<double>>& matrix,
                       const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                       const std::string& title,
                       std::optional<std::pair<double, double>> value_range = std::nullopt);

// ---- Bar chart ----
// Fixed geometry, so the image size is known from the number of bars:
//   width  = kBarLeftMargin + n * kBarSlot + kBarRightMargin
//   height = kBarTopMargin + kBarPlotHeight + kBarBottomMargin
inline constexpr int kBarSlot = 56;
inline constexpr int kBarWidth = 36;
inline constexpr int kBarLeftMargin = 70;
inline constexpr int kBarRightMargin = 20;
inline constexpr int kBarTopMargin = 40;
inline constexpr int kBarPlotHeight = 300;
inline constexpr int kBarBottomMargin = 110;  // room for vertical variant names
// One bar per variant: height = mean, error bar = +-std (pass 0 for none), value label above.
// The y axis starts at 0 (or below, for negative means) and ends at a "nice" tick above the tallest
// mean+std. Throws std::invalid_argument when the three vectors differ in length or are empty.
Image render_bar_chart(const std::vector<std::string>& names, const std::vector<double>& means,
                       const std::vector<double>& stds, const std::string& y_label, const std::string& title);
void write_bar_chart_png(const std::filesystem::path& path, const std::vector<std::string>& names,
                         const std::vector<double>& means, const std::vector<double>& stds,
                         const std::string& y_label, const std::string& title);
// Tick values for an axis covering [lo, hi]: evenly spaced multiples of 1, 2 or 5 x 10^k,
// first <= lo, last >= hi, about `target` intervals.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace peft::eval
