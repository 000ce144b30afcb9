// The pattern table (written in the spec's own arrow notation so it can be
// checked against the spec by eye) and the protocol-name parser.
#include "crypto/noise_pattern.h"

#include <cctype>
#include <cstdlib>

#include "base/check.h"

namespace dpnode::crypto::noise {
namespace {

struct PatternText {
  const char* name;
  const char* text;  // pre-messages, "...", then messages; lines split by '\n'
};

// Noise spec rev 34, section 7: one-way, fundamental interactive, deferred.
constexpr PatternText kPatterns[] = {
    {"N", "<- s\n...\n-> e, es"},
    {"K", "-> s\n<- s\n...\n-> e, es, ss"},
    {"X", "<- s\n...\n-> e, es, s, ss"},
    {"NN", "-> e\n<- e, ee"},
    {"NK", "<- s\n...\n-> e, es\n<- e, ee"},
    {"NX", "-> e\n<- e, ee, s, es"},
    {"KN", "-> s\n...\n-> e\n<- e, ee, se"},
    {"KK", "-> s\n<- s\n...\n-> e, es, ss\n<- e, ee, se"},
    {"KX", "-> s\n...\n-> e\n<- e, ee, se, s, es"},
    {"XN", "-> e\n<- e, ee\n-> s, se"},
    {"XK", "<- s\n...\n-> e, es\n<- e, ee\n-> s, se"},
    {"XX", "-> e\n<- e, ee, s, es\n-> s, se"},
    {"IN", "-> e, s\n<- e, ee, se"},
    {"IK", "<- s\n...\n-> e, es, s, ss\n<- e, ee, se"},
    {"IX", "-> e, s\n<- e, ee, se, s, es"},
    {"NK1", "<- s\n...\n-> e\n<- e, ee, es"},
    {"NX1", "-> e\n<- e, ee, s\n-> es"},
    {"X1N", "-> e\n<- e, ee\n-> s\n<- se"},
    {"X1K", "<- s\n...\n-> e, es\n<- e, ee\n-> s\n<- se"},
    {"XK1", "<- s\n...\n-> e\n<- e, ee, es\n-> s, se"},
    {"X1K1", "<- s\n...\n-> e\n<- e, ee, es\n-> s\n<- se"},
    {"X1X", "-> e\n<- e, ee, s, es\n-> s\n<- se"},
    {"XX1", "-> e\n<- e, ee, s\n-> es, s, se"},
    {"X1X1", "-> e\n<- e, ee, s\n-> es, s\n<- se"},
    {"K1N", "-> s\n...\n-> e\n<- e, ee\n-> se"},
    {"K1K", "-> s\n<- s\n...\n-> e, es\n<- e, ee\n-> se"},
    {"KK1", "-> s\n<- s\n...\n-> e\n<- e, ee, se, es"},
    {"K1K1", "-> s\n<- s\n...\n-> e\n<- e, ee, es\n-> se"},
    {"K1X", "-> s\n...\n-> e\n<- e, ee, s, es\n-> se"},
    {"KX1", "-> s\n...\n-> e\n<- e, ee, se, s\n-> es"},
    {"K1X1", "-> s\n...\n-> e\n<- e, ee, s\n-> se, es"},
    {"I1N", "-> e, s\n<- e, ee\n-> se"},
    {"I1K", "<- s\n...\n-> e, es, s\n<- e, ee\n-> se"},
    {"IK1", "<- s\n...\n-> e, s\n<- e, ee, se, es"},
    {"I1K1", "<- s\n...\n-> e, s\n<- e, ee, es\n-> se"},
    {"I1X", "-> e, s\n<- e, ee, s, es\n-> se"},
    {"IX1", "-> e, s\n<- e, ee, se, s\n-> es"},
    {"I1X1", "-> e, s\n<- e, ee, s\n-> se, es"},
};

constexpr std::string_view kSuffix = "_25519_ChaChaPoly_BLAKE2b";
constexpr std::string_view kPrefix = "Noise_";

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Token ParseToken(std::string_view t) {
  if (t == "e") return Token::kE;
  if (t == "s") return Token::kS;
  if (t == "ee") return Token::kEE;
  if (t == "es") return Token::kES;
  if (t == "se") return Token::kSE;
  if (t == "ss") return Token::kSS;
  // The table is compile-time data; a typo in it is a programming error.
  DPNODE_CHECK(false, "bad token '%.*s' in the pattern table", static_cast<int>(t.size()),
               t.data());
  return Token::kE;
}

MessagePattern ParseLine(std::string_view line) {
  MessagePattern message;
  DPNODE_CHECK(line.size() > 3 && (line.substr(0, 3) == "-> " || line.substr(0, 3) == "<- "),
               "bad line in the pattern table");
  message.from_initiator = line[0] == '-';
  for (std::string_view t : Split(line.substr(3), ','))
    message.tokens.push_back(ParseToken(Trim(t)));
  return message;
}

HandshakePattern FromText(const PatternText& entry) {
  HandshakePattern pattern;
  pattern.name = entry.name;
  std::vector<MessagePattern> lines;
  for (std::string_view line : Split(entry.text, '\n')) {
    if (line == "...") {
      for (MessagePattern& pre : lines) {
        (pre.from_initiator ? pattern.initiator_pre : pattern.responder_pre) = pre.tokens;
      }
      lines.clear();
      continue;
    }
    lines.push_back(ParseLine(line));
  }
  pattern.messages = std::move(lines);
  pattern.one_way = pattern.messages.size() == 1 && pattern.name.size() == 1;
  return pattern;
}

// "psk3" -> 3; -1 when not a psk modifier.
int ParsePskModifier(std::string_view modifier) {
  if (modifier.size() < 4 || modifier.substr(0, 3) != "psk") return -1;
  int n = 0;
  for (char c : modifier.substr(3)) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || n > 100) return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

const char* TokenName(Token token) {
  switch (token) {
    case Token::kE:
      return "e";
    case Token::kS:
      return "s";
    case Token::kEE:
      return "ee";
    case Token::kES:
      return "es";
    case Token::kSE:
      return "se";
    case Token::kSS:
      return "ss";
    case Token::kPsk:
      return "psk";
  }
  return "?";
}

int HandshakePattern::PskCount() const {
  int count = 0;
  for (const MessagePattern& m : messages) {
    for (Token t : m.tokens) count += t == Token::kPsk ? 1 : 0;
  }
  return count;
}

std::string HandshakePattern::ToString() const {
  auto line = [](bool from_initiator, const std::vector<Token>& tokens) {
    std::string out = from_initiator ? "-> " : "<- ";
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ", ";
      out += TokenName(tokens[i]);
    }
    return out + "\n";
  };
  std::string out = name + ":\n";
  if (!initiator_pre.empty()) out += "  " + line(true, initiator_pre);
  if (!responder_pre.empty()) out += "  " + line(false, responder_pre);
  if (!initiator_pre.empty() || !responder_pre.empty()) out += "  ...\n";
  for (const MessagePattern& m : messages) out += "  " + line(m.from_initiator, m.tokens);
  return out;
}

Result<HandshakePattern> LookupPattern(std::string_view name) {
  size_t base_len = 0;
  while (base_len < name.size() &&
         (std::isupper(static_cast<unsigned char>(name[base_len])) || name[base_len] == '1')) {
    ++base_len;
  }
  std::string_view base = name.substr(0, base_len);
  const PatternText* entry = nullptr;
  for (const PatternText& candidate : kPatterns) {
    if (base == candidate.name) entry = &candidate;
  }
  if (entry == nullptr) {
    return Status::NotFound("unsupported handshake pattern '" + std::string(name) + "'");
  }
  HandshakePattern pattern = FromText(*entry);
  pattern.name = std::string(name);
  std::string_view modifiers = name.substr(base_len);
  if (modifiers.empty()) return pattern;
  for (std::string_view modifier : Split(modifiers, '+')) {
    int n = ParsePskModifier(modifier);
    if (n < 0) {
      return Status::NotFound("unsupported pattern modifier '" + std::string(modifier) + "' in '" +
                              std::string(name) + "'");
    }
    if (static_cast<size_t>(n) > pattern.messages.size()) {
      return Status::InvalidArgument("modifier " + std::string(modifier) + " is beyond the " +
                                     std::to_string(pattern.messages.size()) + " messages of " +
                                     std::string(base));
    }
    std::vector<Token>& tokens = pattern.messages[n == 0 ? 0 : n - 1].tokens;
    if (n == 0) {
      tokens.insert(tokens.begin(), Token::kPsk);
    } else {
      tokens.push_back(Token::kPsk);
    }
  }
  return pattern;
}

std::vector<std::string> BasePatternNames() {
  std::vector<std::string> names;
  for (const PatternText& entry : kPatterns) names.emplace_back(entry.name);
  return names;
}

Result<HandshakePattern> ParseProtocolName(std::string_view protocol_name) {
  if (protocol_name.substr(0, kPrefix.size()) != kPrefix) {
    return Status::InvalidArgument("protocol name '" + std::string(protocol_name) +
                                   "' does not start with Noise_");
  }
  std::string_view rest = protocol_name.substr(kPrefix.size());
  size_t underscore = rest.find('_');
  if (underscore == std::string_view::npos || underscore == 0) {
    return Status::InvalidArgument("protocol name '" + std::string(protocol_name) +
                                   "' has no handshake pattern");
  }
  if (rest.substr(underscore) != kSuffix) {
    return Status::NotFound("unsupported primitives in '" + std::string(protocol_name) +
                            "' (only 25519_ChaChaPoly_BLAKE2b)");
  }
  return LookupPattern(rest.substr(0, underscore));
}

}  // namespace dpnode::crypto::noise
