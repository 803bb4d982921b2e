#include "eval/plots.h"

#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/files.h"

namespace fs = std::filesystem;
using namespace peft::eval;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("peft_plots_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Independent read-back through libpng's low-level API (not read_png), checking the header fields too.
struct Decoded {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  std::vector<uint8_t> rgb;
  Rgb at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

Decoded decode_with_libpng(const fs::path& path) {
  Decoded d;
  FILE* fp = std::fopen(path.c_str(), "rb");
  EXPECT_NE(fp, nullptr);
  if (!fp) return d;
  unsigned char sig[8];
  EXPECT_EQ(std::fread(sig, 1, 8, fp), 8u);
  EXPECT_EQ(png_sig_cmp(sig, 0, 8), 0) << "bad PNG signature";
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(fp);
    ADD_FAILURE() << "libpng failed to decode " << path;
    return Decoded();
  }
  png_init_io(png, fp);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  d.width = png_get_image_width(png, info);
  d.height = png_get_image_height(png, info);
  d.bit_depth = png_get_bit_depth(png, info);
  d.color_type = png_get_color_type(png, info);
  d.rgb.resize(static_cast<size_t>(d.width) * d.height * 3);
  std::vector<png_bytep> rows(d.height);
  for (png_uint_32 y = 0; y < d.height; ++y) rows[y] = d.rgb.data() + static_cast<size_t>(y) * d.width * 3;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(fp);
  return d;
}

int count_pixels(const Image& img, Rgb c) {
  int n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) n += img.at(x, y) == c;
  return n;
}

}  // namespace

TEST(Viridis, AnchorsAndInterpolation) {
  EXPECT_EQ(viridis(0.0), (Rgb{68, 1, 84}));
  EXPECT_EQ(viridis(0.5), (Rgb{33, 145, 140}));
  EXPECT_EQ(viridis(1.0), (Rgb{253, 231, 37}));
  EXPECT_EQ(viridis(-3.0), viridis(0.0));  // clamped
  EXPECT_EQ(viridis(7.0), viridis(1.0));
  // Halfway between anchors 0 (68,1,84) and 1/8 (71,45,123): (69.5, 23, 103.5) rounded half away from zero.
  EXPECT_EQ(viridis(1.0 / 16), (Rgb{70, 23, 104}));
  EXPECT_EQ(viridis(std::nan("")), kGrey);
  // Perceptual ordering: luminance grows monotonically along viridis.
  double prev = -1;
  for (int k = 0; k <= 64; ++k) {
    const Rgb c = viridis(k / 64.0);
    const double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    EXPECT_GT(lum, prev) << "t=" << k / 64.0;
    prev = lum;
  }
}

TEST(Png, RoundTripThroughLibpng) {
  const fs::path dir = temp_dir("roundtrip");
  Image img(7, 5, kWhite);
  img.set(0, 0, Rgb{1, 2, 3});
  img.set(6, 4, Rgb{250, 128, 7});
  img.fill_rect(2, 1, 3, 2, Rgb{10, 200, 30});
  const fs::path path = dir / "sub" / "tiny.png";
  write_png(path, img);
  ASSERT_TRUE(fs::exists(path));
  for (const auto& e : fs::directory_iterator(path.parent_path()))  // no temp file left behind
    EXPECT_EQ(e.path().filename(), "tiny.png");
  const Decoded d = decode_with_libpng(path);
  EXPECT_EQ(d.width, 7u);
  EXPECT_EQ(d.height, 5u);
  EXPECT_EQ(d.bit_depth, 8);
  EXPECT_EQ(d.color_type, PNG_COLOR_TYPE_RGB);
  EXPECT_EQ(d.rgb, img.pixels);
  const Image back = read_png(path);
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.pixels, img.pixels);
  fs::remove_all(dir);
}

TEST(Png, ReadErrorsNameTheFile) {
  const fs::path dir = temp_dir("bad");
  const fs::path bad = dir / "bad.png";
  peft::write_file_atomic(bad, "not a png at all");
  try {
    read_png(bad);
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad.string() + ": not a readable PNG", 0), 0u) << e.what();
  }
  EXPECT_THROW(read_png(dir / "missing.png"), peft::InputError);
  fs::remove_all(dir);
}

TEST(Font, GlyphBitsMatchTheirShapes) {
  // 'I' of the 5x7 font: a full vertical stroke in the middle column, serifs on top and bottom rows.
  for (int row = 0; row < kGlyphHeight; ++row) EXPECT_TRUE(glyph_pixel('I', 2, row)) << row;
  EXPECT_TRUE(glyph_pixel('I', 1, 0));
  EXPECT_TRUE(glyph_pixel('I', 3, 6));
  EXPECT_FALSE(glyph_pixel('I', 0, 3));
  // '-' is the single middle row; ' ' is empty; '_' is the bottom row.
  for (int col = 0; col < kGlyphWidth; ++col) {
    for (int row = 0; row < kGlyphHeight; ++row) {
      EXPECT_EQ(glyph_pixel('-', col, row), row == 3);
      EXPECT_FALSE(glyph_pixel(' ', col, row));
      EXPECT_EQ(glyph_pixel('_', col, row), row == 6);
    }
  }
  // Non-printable bytes fall back to '?'.
  for (int col = 0; col < kGlyphWidth; ++col)
    for (int row = 0; row < kGlyphHeight; ++row) EXPECT_EQ(glyph_pixel('\x01', col, row), glyph_pixel('?', col, row));
}

TEST(Font, DrawTextSetsExactlyTheGlyphPixels) {
  Image img(40, 20, kWhite);
  draw_text(img, 3, 4, "H1", kBlack);
  int expected = 0;
  for (char c : std::string("H1"))
    for (int col = 0; col < kGlyphWidth; ++col)
      for (int row = 0; row < kGlyphHeight; ++row) expected += glyph_pixel(c, col, row);
  EXPECT_EQ(count_pixels(img, kBlack), expected);
  // 'H' left stroke at x=3 on every glyph row; '1' stem (column 2) at x = 3 + 6 + 2.
  for (int row = 0; row < kGlyphHeight; ++row) {
    EXPECT_EQ(img.at(3, 4 + row), kBlack);
    EXPECT_EQ(img.at(11, 4 + row), kBlack);
  }
  EXPECT_EQ(text_width("H1"), 11);
  EXPECT_EQ(text_width("H1", 2), 22);

  // Scale 2 quadruples the pixel count.
  Image big(40, 20, kWhite);
  draw_text(big, 0, 0, "H1", kBlack, 2);
  EXPECT_EQ(count_pixels(big, kBlack), 4 * expected);
}

TEST(Font, VerticalTextIsRotatedCounterClockwise) {
  // "L": vertical stroke in column 0, bottom row 6. Rotated CCW inside a box 7 wide x 5 tall at (10, 10):
  // glyph column c -> image row 10 + 4 - c, glyph row r -> image column 10 + r.
  Image img(30, 30, kWhite);
  draw_text(img, 10, 10, "L", kBlack, 1, true);
  for (int col = 0; col < kGlyphWidth; ++col)
    for (int row = 0; row < kGlyphHeight; ++row)
      EXPECT_EQ(img.at(10 + row, 14 - col) == kBlack, glyph_pixel('L', col, row)) << col << "," << row;
  int n = 0;
  for (int col = 0; col < kGlyphWidth; ++col)
    for (int row = 0; row < kGlyphHeight; ++row) n += glyph_pixel('L', col, row);
  EXPECT_EQ(count_pixels(img, kBlack), n);  // nothing outside the box
}

TEST(Heatmap, CellsCarryTheColourMapAndLabelsAreDrawn) {
  // 60 tasks x 8 skills, the Poly routing shape; values in [0, 1].
  const int rows = 60, cols = 8;
  std::vector<std::vector<double>> m(rows, std::vector<double>(cols));
  std::vector<std::string> tasks, skills;
  for (int i = 0; i < rows; ++i) {
    tasks.push_back("task" + std::to_string(100 + i) + "_some_superni_task_name");
    for (int j = 0; j < cols; ++j) m[i][j] = ((i * 7 + j * 3) % 11) / 10.0;
  }
  for (int j = 0; j < cols; ++j) skills.push_back("skill " + std::to_string(j));
  m[5][3] = 0.25;
  m[0][0] = 0.0;   // min
  m[1][1] = 1.0;   // max

  const fs::path dir = temp_dir("heatmap");
  const fs::path path = dir / "routing.png";
  write_heatmap_png(path, m, tasks, skills, "Poly routing (task x skill)");
  const HeatmapLayout L = heatmap_layout(m, tasks, skills, "Poly routing (task x skill)");
  EXPECT_DOUBLE_EQ(L.vmin, 0.0);
  EXPECT_DOUBLE_EQ(L.vmax, 1.0);
  EXPECT_GE(L.cell_h, 12);  // readable rows for 60 tasks
  const Decoded d = decode_with_libpng(path);
  ASSERT_EQ(d.width, static_cast<png_uint_32>(L.width));
  ASSERT_EQ(d.height, static_cast<png_uint_32>(L.height));
  EXPECT_GE(L.height, L.y0 + rows * L.cell_h);

  // Centre of cell (5, 3) holds viridis(0.25) = anchor (59, 82, 139); every cell matches the map.
  auto centre = [&](int i, int j) {
    return d.at(L.x0 + j * L.cell_w + L.cell_w / 2, L.y0 + i * L.cell_h + L.cell_h / 2);
  };
  EXPECT_EQ(centre(5, 3), (Rgb{59, 82, 139}));
  EXPECT_EQ(centre(0, 0), viridis(0.0));
  EXPECT_EQ(centre(1, 1), viridis(1.0));
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) ASSERT_EQ(centre(i, j), viridis(m[i][j])) << i << "," << j;

  // Colour bar: top = max colour, bottom = min colour.
  EXPECT_EQ(d.at(L.colorbar_x + 2, L.colorbar_y), viridis(1.0));
  EXPECT_EQ(d.at(L.colorbar_x + 2, L.colorbar_y + L.colorbar_h - 1), viridis(0.0));

  // Labels: black pixels exist left of the grid (row labels), below it (column labels), and right of the
  // colour bar (min/max values).
  const Image img = read_png(path);
  auto black_in = [&](int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) n += img.at(x, y) == kBlack;
    return n;
  };
  EXPECT_GT(black_in(0, L.y0, L.x0, L.y0 + L.cell_h), 20);                      // first row label
  EXPECT_GT(black_in(L.x0, L.y0 + rows * L.cell_h, L.x0 + L.cell_w, L.height), 20);  // first column label
  EXPECT_GT(black_in(L.colorbar_x + L.colorbar_w, L.y0, L.width, L.y0 + 10), 5);     // "1" at the top
  EXPECT_GT(black_in(0, 0, L.width, L.y0), 50);                                      // title
  fs::remove_all(dir);
}

TEST(Heatmap, ExplicitRangeNaNAndShapeErrors) {
  std::vector<std::vector<double>> m = {{0.5, std::nan("")}};
  const HeatmapLayout L = heatmap_layout(m, {"t"}, {"a", "b"}, "", std::make_pair(0.0, 2.0));
  const Image img = render_heatmap(m, {"t"}, {"a", "b"}, "", std::make_pair(0.0, 2.0));
  EXPECT_EQ(img.at(L.x0 + L.cell_w / 2, L.y0 + L.cell_h / 2), viridis(0.25));
  EXPECT_EQ(img.at(L.x0 + L.cell_w + L.cell_w / 2, L.y0 + L.cell_h / 2), kGrey);
  EXPECT_THROW(render_heatmap({}, {}, {}, ""), std::invalid_argument);
  EXPECT_THROW(render_heatmap({{1, 2}, {3}}, {"a", "b"}, {"x", "y"}, ""), std::invalid_argument);
  EXPECT_THROW(render_heatmap({{1, 2}}, {"a", "b"}, {"x", "y"}, ""), std::invalid_argument);
  EXPECT_THROW(render_heatmap({{1, 2}}, {"a"}, {"x"}, ""), std::invalid_argument);
}

TEST(BarChart, SizeAxisAndBars) {
  const std::vector<std::string> names = {"lora", "poly", "mhr", "adamix"};
  const std::vector<double> means = {40.0, 45.5, 47.25, 30.0};
  const std::vector<double> stds = {1.0, 0.5, 2.0, 0.0};
  const fs::path dir = temp_dir("bars");
  const fs::path path = dir / "bars.png";
  write_bar_chart_png(path, names, means, stds, "Rouge-L", "SuperNI 100 tasks");
  const Decoded d = decode_with_libpng(path);
  EXPECT_EQ(d.width, static_cast<png_uint_32>(kBarLeftMargin + 4 * kBarSlot + kBarRightMargin));  // 314
  EXPECT_EQ(d.width, 314u);
  EXPECT_EQ(d.height, static_cast<png_uint_32>(kBarTopMargin + kBarPlotHeight + kBarBottomMargin));

  // Axis spans 0..50 (ticks 0,10,...,50): the bar for "poly" (mean 45.5) at its centre column is filled with
  // its colour from the baseline up to y(45.5), and white just above the error bar's cap.
  const Image img = read_png(path);
  const int plot_bottom = kBarTopMargin + kBarPlotHeight;
  auto y_of = [&](double v) { return plot_bottom - static_cast<int>(std::lround(v / 50.0 * kBarPlotHeight)); };
  const int cx_poly = kBarLeftMargin + 1 * kBarSlot + kBarSlot / 2;
  const Rgb poly_color = viridis(0.15 + 0.7 * 1 / 3);
  EXPECT_EQ(img.at(cx_poly - 10, y_of(20.0)), poly_color);
  EXPECT_EQ(img.at(cx_poly - 10, y_of(45.5) + 1), poly_color);
  EXPECT_EQ(img.at(cx_poly - 10, y_of(45.5) - 2), kWhite);
  // Error bar: black vertical stroke at the bar centre between mean-std and mean+std, cap at mean+std.
  EXPECT_EQ(img.at(cx_poly, y_of(45.5)), kBlack);
  EXPECT_EQ(img.at(cx_poly + 4, y_of(46.0)), kBlack);
  // y axis line and a tick at 50 (top of the plot).
  EXPECT_EQ(img.at(kBarLeftMargin - 1, kBarTopMargin + 10), kBlack);
  EXPECT_EQ(img.at(kBarLeftMargin - 3, y_of(50.0)), kBlack);
  EXPECT_EQ(y_of(50.0), kBarTopMargin);
  fs::remove_all(dir);

  EXPECT_THROW(render_bar_chart({"a"}, {1.0, 2.0}, {0.0}, "", ""), std::invalid_argument);
  EXPECT_THROW(render_bar_chart({}, {}, {}, "", ""), std::invalid_argument);
}

TEST(BarChart, NiceTicks) {
  EXPECT_EQ(nice_ticks(0, 49.25), (std::vector<double>{0, 10, 20, 30, 40, 50}));
  EXPECT_EQ(nice_ticks(0, 0.83), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0}));
  EXPECT_EQ(nice_ticks(-3, 7), (std::vector<double>{-4, -2, 0, 2, 4, 6, 8}));
  EXPECT_EQ(nice_ticks(0, 0), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0}));
}
