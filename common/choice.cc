#include "common/choice.h"

#include "absl/strings/ascii.h"

namespace medeval {
namespace {

struct Marker {
  size_t pos;       // of the letter
  size_t text_pos;  // first byte after the separator
  char letter;
  // A letter at a line start followed directly by text ("D《纽伦堡法典》"):
  // an option only inside a chain that has separated options too.
  bool weak = false;
};

bool StartsWithAt(absl::string_view s, size_t pos, absl::string_view what) {
  return s.substr(pos, what.size()) == what;
}

// Length of an option separator at `pos` (".", "、", ":", ")" and their
// full-width forms), or 0.
size_t SeparatorLength(absl::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  char c = s[pos];
  if (c == '.' || c == ':' || c == ')') return 1;
  for (absl::string_view w : {"．", "、", "：", "）"}) {
    if (StartsWithAt(s, pos, w)) return w.size();
  }
  return 0;
}

bool AtLineStart(absl::string_view s, size_t pos) {
  size_t i = pos;
  while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) --i;
  return i == 0 || s[i - 1] == '\n';
}

std::vector<Marker> FindMarkers(absl::string_view s) {
  std::vector<Marker> out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c < 'A' || c > 'Z') continue;
    // The letter must not be part of an ASCII word ("DNA.", "HbA1c").
    if (i > 0) {
      unsigned char p = static_cast<unsigned char>(s[i - 1]);
      if (p < 0x80 && (absl::ascii_isalnum(p) || p == '_')) continue;
    }
    size_t after = i + 1;
    // "(A)" and "（A）" end with a separator too.
    size_t sep = SeparatorLength(s, after);
    if (sep > 0) {
      out.push_back({i, after + sep, c});
    } else if (after < s.size() && (s[after] == ' ' || s[after] == '\t') && AtLineStart(s, i)) {
      out.push_back({i, after + 1, c});  // "A 选项" at a line start
    } else if (after < s.size() && static_cast<unsigned char>(s[after]) >= 0x80 &&
               AtLineStart(s, i)) {
      out.push_back({i, after, c, /*weak=*/true});
    }
  }
  return out;
}

// A chain of weak markers alone is more likely prose ("A型血……\nB超……").
bool Usable(const std::vector<Marker>& chain) {
  if (chain.size() < 2) return false;
  for (const Marker& m : chain) {
    if (!m.weak) return true;
  }
  return false;
}

// The last run of consecutive letters A, B, C, ... with at least two options,
// read to its end (DDx-advanced lists up to L).
std::vector<Marker> FindChain(absl::string_view question) {
  std::vector<Marker> best, cur;
  for (const Marker& m : FindMarkers(question)) {
    if (m.letter == 'A') {
      if (Usable(cur)) best = cur;
      cur.assign(1, m);
    } else if (!cur.empty() && m.letter == cur.back().letter + 1) {
      cur.push_back(m);
    }
  }
  if (Usable(cur)) best = cur;
  return best;
}

}  // namespace

std::vector<ChoiceOption> ParseOptions(absl::string_view question) {
  std::vector<Marker> chain = FindChain(question);
  std::vector<ChoiceOption> options;
  for (size_t k = 0; k < chain.size(); ++k) {
    size_t begin = chain[k].text_pos;
    size_t end;
    if (k + 1 < chain.size()) {
      end = chain[k + 1].pos;
      // "(B)" leaves its "(" behind the previous option.
      if (end > 0 && question[end - 1] == '(') --end;
    } else {
      end = question.find('\n', begin);
      if (end == absl::string_view::npos) end = question.size();
    }
    if (end < begin) end = begin;
    absl::string_view text = absl::StripAsciiWhitespace(question.substr(begin, end - begin));
    options.push_back({chain[k].letter, std::string(text)});
  }
  return options;
}

std::string QuestionStem(absl::string_view question) {
  std::vector<Marker> chain = FindChain(question);
  size_t end = chain.empty() ? question.size() : chain.front().pos;
  return std::string(absl::StripAsciiWhitespace(question.substr(0, end)));
}

}  // namespace medeval
