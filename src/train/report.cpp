// SPDX-License-Identifier: Apache-2.0
// Human-readable evaluation output: the plain-text metrics table and the self-contained HTML
// report (inline CSS and SVG, no scripts).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "torp/train/evaluate.hpp"

namespace torp {

using json = nlohmann::json;

namespace {

std::string num(double v, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

/// A metric cell: percentages for shares, "-" for missing values.
std::string cell(const json& m, const char* key, double scale, const char* format) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_number()) return "-";
  return num(it->get<double>() * scale, format);
}

struct Row {
  const char* key;
  const char* label;
};
constexpr Row kRows[] = {{"validation", "validation, all labels"},
                         {"validation_plausible", "validation, plausible labels"},
                         {"validation_plausible_no_memory_hit", "validation, plausible, no memory hit"},
                         {"test", "test, all labels"},
                         {"test_plausible", "test, plausible labels"},
                         {"test_plausible_no_memory_hit", "test, plausible, no memory hit"}};

struct Column {
  const char* key;
  const char* label;
  double scale;
  const char* format;
};
constexpr Column kColumns[] = {{"within_10", "±10%", 100, "%.1f%%"},     {"within_25", "±25%", 100, "%.1f%%"},
                               {"median_ape", "median APE", 1, "%.2f%%"}, {"mean_ape", "mean APE", 1, "%.2f%%"},
                               {"p90_ape", "p90 APE", 1, "%.1f%%"},       {"r2", "R²", 1, "%.4f"},
                               {"spearman", "Spearman", 1, "%.4f"}};

/// Width in terminal columns (UTF-8 continuation bytes do not count).
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string pad(const std::string& s, std::size_t width, bool left) {
  const std::size_t w = display_width(s);
  const std::string fill(w < width ? width - w : 0, ' ');
  return left ? s + fill : fill + s;
}

// ---- SVG ----------------------------------------------------------------------------------------
struct Point {
  double measured, predicted;
  bool plausible;
};

std::string scatter_svg(const std::vector<Point>& pts) {
  const double W = 560, H = 560, L = 70, R = 20, T = 20, B = 60;
  double lo = 1e300, hi = 0;
  for (const auto& p : pts) {
    lo = std::min({lo, p.measured, p.predicted});
    hi = std::max({hi, p.measured, p.predicted});
  }
  if (pts.empty()) {
    lo = 1e3;
    hi = 1e6;
  }
  const double llo = std::floor(std::log10(lo) * 4) / 4, lhi = std::ceil(std::log10(hi) * 4) / 4;
  const double span = std::max(lhi - llo, 0.25);
  auto sx = [&](double v) { return L + (std::log10(v) - llo) / span * (W - L - R); };
  auto sy = [&](double v) { return H - B - (std::log10(v) - llo) / span * (H - T - B); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" role=\"img\" aria-label=\"predicted versus measured runtime, log-log\">\n";
  s << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"#fff\" stroke=\"#999\"/>\n";
  for (int d = static_cast<int>(std::ceil(llo)); d <= static_cast<int>(std::floor(lhi)); ++d) {
    const double v = std::pow(10.0, d);
    const std::string label = d >= 6 ? num(v / 1e6, "%g ms") : d >= 3 ? num(v / 1e3, "%g µs") : num(v, "%g ns");
    s << "<line x1=\"" << num(sx(v), "%.1f") << "\" y1=\"" << T << "\" x2=\"" << num(sx(v), "%.1f") << "\" y2=\"" << H - B
      << "\" stroke=\"#eee\"/>";
    s << "<line x1=\"" << L << "\" y1=\"" << num(sy(v), "%.1f") << "\" x2=\"" << W - R << "\" y2=\"" << num(sy(v), "%.1f")
      << "\" stroke=\"#eee\"/>\n";
    s << "<text x=\"" << num(sx(v), "%.1f") << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">" << label << "</text>";
    s << "<text x=\"" << L - 6 << "\" y=\"" << num(sy(v) + 4, "%.1f") << "\" text-anchor=\"end\">" << label << "</text>\n";
  }
  const double a = std::pow(10.0, llo), b = std::pow(10.0, llo + span);
  auto diag = [&](double f, const char* style) {
    s << "<line x1=\"" << num(sx(a), "%.1f") << "\" y1=\"" << num(sy(a * f), "%.1f") << "\" x2=\"" << num(sx(b), "%.1f")
      << "\" y2=\"" << num(sy(b * f), "%.1f") << "\" " << style << "/>\n";
  };
  s << "<clipPath id=\"plot\"><rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\"/></clipPath>\n<g clip-path=\"url(#plot)\">\n";
  diag(1.0, "stroke=\"#444\"");
  diag(1.1, "stroke=\"#888\" stroke-dasharray=\"4 3\"");
  diag(1.0 / 1.1, "stroke=\"#888\" stroke-dasharray=\"4 3\"");
  for (bool plausible : {true, false})  // implausible labels drawn last, on top
    for (const auto& p : pts) {
      if (p.plausible != plausible) continue;
      s << "<circle cx=\"" << num(sx(p.measured), "%.1f") << "\" cy=\"" << num(sy(p.predicted), "%.1f") << "\" r=\""
        << (plausible ? "2.5\" fill=\"#1f5fa8\" fill-opacity=\"0.6\"" : "3.5\" fill=\"none\" stroke=\"#c62828\"")
        << "><title>measured " << num(p.measured, "%.0f") << " ns, predicted " << num(p.predicted, "%.0f") << " ns"
        << (plausible ? "" : " (implausible label)") << "</title></circle>\n";
    }
  s << "</g>\n<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">measured runtime</text>\n";
  s << "<text transform=\"translate(16 " << (T + H - B) / 2 << ") rotate(-90)\" text-anchor=\"middle\">predicted runtime</text>\n";
  s << "</svg>\n";
  return s.str();
}

std::string histogram_svg(const std::vector<Point>& pts) {
  const int lo = -30, hi = 30;               // 1% bins centred on lo..hi; two overflow bins
  const int nbins = hi - lo + 3;
  std::vector<int> ok(nbins, 0), bad(nbins, 0);
  for (const auto& p : pts) {
    const double e = 100.0 * (p.predicted / p.measured - 1.0);
    int b = e < lo - 0.5 ? 0 : e >= hi + 0.5 ? nbins - 1 : 1 + static_cast<int>(std::floor(e - (lo - 0.5)));
    (p.plausible ? ok : bad)[b]++;
  }
  int top = 1;
  for (int i = 0; i < nbins; ++i) top = std::max(top, ok[i] + bad[i]);
  const double W = 700, H = 300, L = 50, R = 20, T = 20, B = 50;
  const double bw = (W - L - R) / nbins;
  auto y = [&](double c) { return H - B - c / top * (H - T - B); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" role=\"img\" aria-label=\"histogram of signed percentage errors\">\n";
  s << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"#fff\" stroke=\"#999\"/>\n";
  for (int i = 0; i < nbins; ++i) {
    const double x = L + i * bw;
    const std::string range = i == 0 ? "&lt; " + num(lo - 0.5, "%g") + "%"
                              : i == nbins - 1 ? "&gt;= " + num(hi + 0.5, "%g") + "%"
                                               : "[" + num(lo + i - 1.5, "%g") + "%, " + num(lo + i - 0.5, "%g") + "%)";
    if (ok[i] > 0)
      s << "<rect x=\"" << num(x + 0.5, "%.1f") << "\" y=\"" << num(y(ok[i]), "%.1f") << "\" width=\""
        << num(bw - 1, "%.1f") << "\" height=\"" << num(y(0) - y(ok[i]), "%.1f") << "\" fill=\"#1f5fa8\"><title>" << range
        << ": " << ok[i] << " plausible</title></rect>\n";
    if (bad[i] > 0)
      s << "<rect x=\"" << num(x + 0.5, "%.1f") << "\" y=\"" << num(y(ok[i] + bad[i]), "%.1f") << "\" width=\""
        << num(bw - 1, "%.1f") << "\" height=\"" << num(y(ok[i]) - y(ok[i] + bad[i]), "%.1f")
        << "\" fill=\"#fff\" stroke=\"#c62828\"><title>" << range << ": " << bad[i] << " implausible</title></rect>\n";
  }
  for (int e = lo; e <= hi; e += 10) {
    const double x = L + (1.5 + e - lo) * bw;
    s << "<line x1=\"" << num(x, "%.1f") << "\" y1=\"" << T << "\" x2=\"" << num(x, "%.1f") << "\" y2=\"" << H - B
      << "\" stroke=\"" << (e == 0 ? "#444" : "#ddd") << "\"/>";
    s << "<text x=\"" << num(x, "%.1f") << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">" << e << "%</text>\n";
  }
  s << "<text x=\"" << L + bw / 2 << "\" y=\"" << H - B + 30 << "\" text-anchor=\"middle\">&lt;</text>";
  s << "<text x=\"" << W - R - bw / 2 << "\" y=\"" << H - B + 30 << "\" text-anchor=\"middle\">&gt;</text>\n";
  s << "<text x=\"" << L - 6 << "\" y=\"" << T + 10 << "\" text-anchor=\"end\">" << top << "</text>";
  s << "<text x=\"" << L - 6 << "\" y=\"" << H - B << "\" text-anchor=\"end\">0</text>\n";
  s << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8
    << "\" text-anchor=\"middle\">signed error (predicted / measured - 1), 1% bins centred on whole percents</text>\n";
  s << "</svg>\n";
  return s.str();
}

}  // namespace

std::string metrics_table(const json& metrics) {
  std::vector<std::vector<std::string>> rows{{"configurations", "n"}};
  for (const auto& c : kColumns) rows[0].push_back(c.label);
  for (const auto& r : kRows) {
    auto it = metrics.find(r.key);
    if (it == metrics.end() || !it->is_object()) continue;
    std::vector<std::string> row{r.label, cell(*it, "n", 1, "%.0f")};
    for (const auto& c : kColumns) row.push_back(cell(*it, c.key, c.scale, c.format));
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) out += (i ? "  " : "") + pad(row[i], width[i], i == 0);
    out += '\n';
  }
  return out;
}

std::string interval_table(const json& intervals) {
  if (intervals.empty()) return {};
  std::string out = "prediction intervals (test, plausible labels):\n";
  out += pad("domain", 12, true) + pad("n", 7, false) + pad("with interval", 15, false) + pad("coverage", 10, false) +
         pad("median width", 14, false) + "\n";
  for (const auto& [domain, t] : intervals.items()) {
    out += pad(domain, 12, true) + pad(std::to_string(t.at("n").get<std::size_t>()), 7, false) +
           pad(std::to_string(t.at("with_interval").get<std::size_t>()), 15, false) +
           pad(cell(t, "coverage", 100, "%.1f%%"), 10, false) + pad(cell(t, "median_width", 100, "%.1f%%"), 14, false) + "\n";
  }
  return out;
}

namespace {

/// Interval coverage and median relative width per domain, as an HTML table.
std::string interval_html(const json& intervals) {
  std::ostringstream h;
  h << "<h2>Prediction intervals (test configurations, plausible labels)</h2>\n";
  if (intervals.empty()) return h.str() + "<p class=\"note\">No test configuration was served.</p>\n";
  h << "<table>\n<tr><th>domain</th><th>n</th><th>with interval</th><th>coverage</th><th>median width</th></tr>\n";
  for (const auto& [domain, t] : intervals.items())
    h << "<tr><td>" << escape(domain) << "</td><td>" << t.at("n").get<std::size_t>() << "</td><td>"
      << t.at("with_interval").get<std::size_t>() << "</td><td>" << cell(t, "coverage", 100, "%.1f%%") << "</td><td>"
      << cell(t, "median_width", 100, "%.1f%%") << "</td></tr>\n";
  h << "</table>\n<p class=\"note\">Coverage: share of measured labels inside the served interval [lo, hi]; "
       "width: (hi - lo) / predicted runtime.</p>\n";
  return h.str();
}

/// A share as a percentage, an APE, or "-" for null.
std::string share(const json& v) { return v.is_number() ? num(100.0 * v.get<double>(), "%.1f%%") : std::string("-"); }
std::string ape_cell(const json& v) { return v.is_number() ? num(v.get<double>(), "%.2f%%") : std::string("-"); }

/// Distinct values joined by ", " (the first three, then how many more).
std::string joined(const std::vector<std::string>& values) {
  std::string out;
  for (std::size_t k = 0; k < values.size() && k < 3; ++k) out += (k ? ", " : "") + values[k];
  if (values.size() > 3) out += " (+" + std::to_string(values.size() - 3) + " more)";
  return out;
}

/// The worst test errors among plausible (or implausible) labels, with the baseline's (and the
/// previous model's) error and the sweep suite and input_hash of the configuration's rows.
std::string worst_table(const Evaluation& ev, bool plausible, std::size_t limit) {
  const std::vector<std::size_t> rows = worst_errors(ev, plausible, limit);
  if (rows.empty()) return "<p class=\"note\">None.</p>\n";
  auto error = [&](double predicted, std::size_t i) {
    return std::isnan(predicted) ? std::string("-") : num(100.0 * (predicted / ev.configs[i].label_ns - 1.0), "%+.1f%%");
  };
  std::ostringstream h;
  h << "<table>\n<tr><th>arguments</th><th>measured (ns)</th><th>predicted (ns)</th><th>error</th>"
       "<th>baseline error</th>"
    << (ev.previous.empty() ? "" : "<th>previous error</th>") << "<th>domain</th><th>suite</th><th>input_hash</th></tr>\n";
  for (std::size_t i : rows) {
    std::string args = ev.configs[i].args.dump();
    if (args.size() > 160) args = args.substr(0, 160) + "…";
    h << "<tr><td><code>" << escape(args) << "</code></td><td>" << num(ev.configs[i].label_ns, "%.0f") << "</td><td>"
      << num(ev.predicted[i], "%.0f") << "</td><td>" << error(ev.predicted[i], i) << "</td><td>"
      << error(ev.baseline.empty() ? NAN : ev.baseline[i], i) << "</td>";
    if (!ev.previous.empty()) h << "<td>" << error(ev.previous[i].runtime_ns, i) << "</td>";
    h << "<td>" << escape(ev.served[i].domain) << "</td><td>" << escape(joined(ev.configs[i].suites))
      << "</td><td><code>" << escape(joined(ev.configs[i].input_hashes)) << "</code></td></tr>\n";
  }
  h << "</table>\n";
  return h.str();
}

/// The columns of a comparison row present in this report: model, baseline, previous.
std::vector<std::pair<const char*, std::string>> present_columns(const json& c) {
  std::vector<std::pair<const char*, std::string>> cols{{"model", "model"}};
  const json& overall = c.at("overall").at("plausible");
  if (!overall.at("baseline").is_null()) cols.emplace_back("baseline", "baseline alone");
  if (!overall.at("previous").is_null()) cols.emplace_back("previous", "previous");
  return cols;
}

/// One row's cells: per column n, ±10%, median APE (and coverage, width for served columns).
std::string score_cells(const json& row, const std::vector<std::pair<const char*, std::string>>& cols) {
  std::ostringstream h;
  for (const auto& [key, label] : cols) {
    const json& s = row.at(key);
    h << "<td>" << s.value("n", 0) << "</td><td>" << share(s["within_10"]) << "</td><td>" << ape_cell(s["median_ape"])
      << "</td>";
    if (s.contains("coverage")) h << "<td>" << share(s["coverage"]) << "</td><td>" << share(s["median_width"]) << "</td>";
  }
  return h.str();
}

std::string score_header(const std::vector<std::pair<const char*, std::string>>& cols, const char* first) {
  std::ostringstream h;
  h << "<tr><th rowspan=\"2\">" << first << "</th>";
  for (const auto& [key, label] : cols)
    h << "<th colspan=\"" << (std::string(key) == "baseline" ? 3 : 5) << "\">" << escape(label) << "</th>";
  h << "</tr>\n<tr>";
  for (const auto& [key, label] : cols) {
    h << "<th>n</th><th>±10%</th><th>median APE</th>";
    if (std::string(key) != "baseline") h << "<th>coverage</th><th>median width</th>";
  }
  h << "</tr>\n";
  return h.str();
}

/// A JSON pointer into the args, short: the argument, its last named field and trailing indices
/// ("/input_tensor/memory_config/buffer_type" -> "input_tensor.buffer_type",
/// "/input_tensor_a/logical_shape/3" -> "input_tensor_a.logical_shape[3]").
std::string field_name(const std::string& pointer) {
  std::vector<std::string> parts;
  for (std::size_t p = 1; p <= pointer.size();) {
    const std::size_t q = std::min(pointer.find('/', p), pointer.size());
    parts.push_back(pointer.substr(p, q - p));
    p = q + 1;
  }
  if (parts.empty()) return pointer;
  std::size_t named = parts.size();
  while (named > 1 && !parts[named - 1].empty() &&
         parts[named - 1].find_first_not_of("0123456789") == std::string::npos)
    --named;
  std::string out = parts.front();
  if (named > 1) out += "." + parts[named - 1];
  for (std::size_t k = named; k < parts.size(); ++k) out += "[" + parts[k] + "]";
  return out;
}

/// Arguments a group's configurations share, as "field=value, ..." text.
std::string common_text(const json& common) {
  std::string out;
  for (const auto& [pointer, value] : common.items())
    out += (out.empty() ? "" : ", ") + field_name(pointer) + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  return out;
}

/// The model beside its baseline alone and the previous model: overall and per group.
std::string comparison_html(const json& c) {
  const auto cols = present_columns(c);
  std::ostringstream h;
  h << "<h2>Model, physical baseline alone" << (c.at("previous").is_null() ? "" : ", previous model")
    << " (test configurations)</h2>\n<p class=\"note\">Each column scored on the test configurations the model serves. "
       "Baseline alone: the model's own physical law without the network's correction (what the network adds is the "
       "difference)."
    << (c.at("previous").is_null() ? "" : " Previous: <code>" + escape(c.at("previous").get<std::string>()) + "</code>, same rows.")
    << " Coverage: share of labels inside the served 90% interval; width: median (hi - lo) / runtime.</p>\n<table>\n"
    << score_header(cols, "labels");
  for (const char* part : {"plausible", "all"})
    h << "<tr><td>" << part << "</td>" << score_cells(c.at("overall").at(part), cols) << "</tr>\n";
  h << "</table>\n";
  for (const json& g : c.at("groups")) {
    h << "<h3>By " << escape(g.at("name").get<std::string>()) << " (test, plausible labels)</h3>\n<table>\n"
      << score_header(cols, "group");
    for (const json& row : g.at("rows")) {
      const std::string common = common_text(row.at("common"));
      h << "<tr><td>" << escape(row.at("label").get<std::string>())
        << (common.empty() ? "" : "<br><small>" + escape(common) + "</small>") << "</td>" << score_cells(row, cols) << "</tr>\n";
    }
    h << "</table>\n";
  }
  return h.str();
}

}  // namespace

std::string trust_table(const json& metrics) {
  std::ostringstream o;
  auto pct = [](const json& v) { return v.is_number() ? num(100.0 * v.get<double>(), "%.1f") + "%" : std::string("-"); };
  auto ape = [](const json& v) { return v.is_number() ? num(v.get<double>(), "%.2f") + "%" : std::string("-"); };
  if (auto cv = metrics.find("cv"); cv != metrics.end() && cv->is_object())
    for (auto it = cv->begin(); it != cv->end(); ++it) {
      const json& g = *it;
      o << "cross-validation by " << it.key() << " (" << g.value("groups", 0) << " groups, " << g.value("folds", 0)
        << " folds), out-of-fold plausible labels: n " << g.value("n", 0) << ", ±10% " << pct(g["within_10"])
        << ", median APE " << ape(g["median_ape"]) << "\n";
      if (g.contains("domains"))
        for (auto d = g["domains"].begin(); d != g["domains"].end(); ++d)
          o << "  " << d.key() << ": n " << (*d).value("n", 0) << ", ±10% " << pct((*d)["within_10"]) << ", median APE "
            << ape((*d)["median_ape"]) << ", 90% interval coverage " << pct((*d)["coverage"]) << "\n";
    }
  if (auto tc = metrics.find("test_coverage"); tc != metrics.end() && tc->is_object() && !tc->empty()) {
    o << "test, plausible labels, per domain:\n";
    for (auto d = tc->begin(); d != tc->end(); ++d)
      o << "  " << d.key() << ": n " << (*d).value("n", 0) << ", ±10% " << pct((*d)["within_10"]) << ", median APE "
        << ape((*d)["median_ape"]) << ", 90% interval coverage " << pct((*d)["coverage"]) << ", width "
        << pct((*d)["width"]) << " of the runtime\n";
  }
  return o.str();
}

std::string comparison_table(const json& c) {
  const auto cols = present_columns(c);
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const std::string& label, const json& r) {
    std::vector<std::string> row{label};
    for (const auto& [key, name] : cols) {
      const json& s = r.at(key);
      row.push_back(std::to_string(s.value("n", 0)));
      row.push_back(share(s["within_10"]));
      row.push_back(ape_cell(s["median_ape"]));
      if (s.contains("coverage")) {
        row.push_back(share(s["coverage"]));
        row.push_back(share(s["median_width"]));
      }
    }
    rows.push_back(std::move(row));
  };
  std::vector<std::string> names{""}, header{""};
  for (const auto& [key, name] : cols) {
    const bool served = std::string(key) != "baseline";
    for (const char* h : {"n", "±10%", "median APE", "coverage", "width"}) {
      if (!served && (std::string(h) == "coverage" || std::string(h) == "width")) continue;
      names.push_back(std::string(h) == "n" ? name : "");
      header.push_back(h);
    }
  }
  rows.push_back(names);
  rows.push_back(header);
  add("test, plausible labels", c.at("overall").at("plausible"));
  add("test, all labels", c.at("overall").at("all"));
  for (const json& g : c.at("groups")) {
    rows.push_back({"by " + g.at("name").get<std::string>() + " (test, plausible):"});
    for (const json& row : g.at("rows")) {
      const std::string shared = common_text(row.at("common"));
      add("  " + row.at("label").get<std::string>() + (shared.empty() ? "" : " (" + shared + ")"), row);
    }
  }
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  std::string out;
  for (const auto& [key, name] : cols) out += (out.empty() ? "" : ", ") + name;
  out += " (test configurations the model serves):\n";
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i)
      out += (i ? "  " : "") + (row.size() == 1 ? row[i] : pad(row[i], width[i], i == 0));
    out += '\n';
  }
  return out;
}

std::string html_report(const ModelFile& model, const Evaluation& ev, const std::string& dataset_name) {
  std::vector<Point> pts;
  for (std::size_t i : ev.split.test)
    if (!std::isnan(ev.predicted[i])) pts.push_back({ev.configs[i].label_ns, ev.predicted[i], ev.plausibility.plausible[i]});
  std::size_t implausible = 0;
  for (const auto& p : pts) implausible += p.plausible ? 0 : 1;

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>TORP evaluation: "
    << escape(model.id) << "</title>\n<style>\n"
       "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}\n"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}\n"
       "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\n"
       "svg{font-size:11px;display:block;margin:1em 0}code{font-size:90%}.note{color:#555}\n"
       "</style>\n</head>\n<body>\n";
  h << "<h1>" << escape(model.id) << "</h1>\n<p>Op <code>" << escape(model.op) << "</code> on <code>"
    << escape(model.device.value("name", std::string("?"))) << "</code>, evaluated on <code>" << escape(dataset_name)
    << "</code>: " << ev.aggregation.rows << " rows, " << ev.configs.size()
    << " configurations (median of repeats after rejecting " << ev.aggregation.rejected_rows << " repeats more than "
    << num(ev.aggregation.reject_factor, "%g") << "x from their median). Split by configuration: "
    << ev.split.train.size() << " train, " << ev.split.validation.size() << " validation, " << ev.split.test.size()
    << " test.</p>\n";
  if (ev.plausibility.defined)
    h << "<p class=\"note\">Plausibility rule of the op spec: within each group <code>"
      << escape(model.op_spec.at("plausibility").value("group", json("(one group)")).dump()) << "</code>, the law "
      << "runtime = a + &Sigma; b<sub>j</sub>&middot;x<sub>j</sub> in <code>"
      << escape(model.op_spec.at("plausibility").at("x").dump())
      << "</code> is fitted by least absolute log deviations on the training configurations; a label more than "
      << num(ev.plausibility.factor, "%g")
      << "x away from its group's fit is implausible (a label shifted from another configuration) and is drawn "
         "hollow red. "
      << implausible << " of " << pts.size() << " test configurations are implausible.</p>\n";
  else
    h << "<p class=\"note\">The op spec declares no plausibility rule: every label counts as plausible.</p>\n";

  h << "<h2>Metrics</h2>\n<table>\n<tr><th>configurations</th><th>n</th>";
  for (const auto& c : kColumns) h << "<th>" << c.label << "</th>";
  h << "</tr>\n";
  for (const auto& r : kRows) {
    auto it = ev.metrics.find(r.key);
    if (it == ev.metrics.end()) continue;
    h << "<tr><td>" << r.label << "</td><td>" << cell(*it, "n", 1, "%.0f") << "</td>";
    for (const auto& c : kColumns) h << "<td>" << cell(*it, c.key, c.scale, c.format) << "</td>";
    h << "</tr>\n";
  }
  h << "</table>\n<p class=\"note\">APE: absolute percentage error |predicted/measured - 1|. R² on runtimes in ns; "
       "Spearman: rank correlation with tied ranks averaged. Configurations the model does not serve: "
    << ev.metrics.at("not_served").dump() << ".</p>\n";

  h << "<h2>Predicted vs measured (test configurations)</h2>\n"
       "<p class=\"note\">Log-log. Solid line: perfect prediction; dashed: ±10%. Filled blue: plausible label; hollow "
       "red: implausible label.</p>\n"
    << scatter_svg(pts);
  h << "<h2>Error distribution (test configurations)</h2>\n"
       "<p class=\"note\">Blue: plausible labels; red outline stacked on top: implausible labels. The outer bins "
       "collect errors beyond ±30%.</p>\n"
    << histogram_svg(pts);

  h << interval_html(ev.intervals) << comparison_html(ev.comparison);
  h << "<h2>Largest test errors among plausible labels</h2>\n" << worst_table(ev, true, 15);
  h << "<h2>Implausible test labels (largest errors first)</h2>\n" << worst_table(ev, false, 15);
  h << "<p class=\"note\">Generated by torp eval. Model provenance: trained by "
    << escape(model.provenance.value("trained_by", model.producer)) << ", seed "
    << escape(model.provenance.contains("seed") ? model.provenance["seed"].dump() : "?") << ".</p>\n</body>\n</html>\n";
  return h.str();
}

}  // namespace torp
