// Handshake patterns of the Noise spec (rev 34, section 7) as data, and the
// parser for the protocol names this implementation speaks.
//
// Supported: the 3 one-way patterns (N, K, X), the 12 fundamental interactive
// patterns (NN NK NX KN KK KX XN XK XX IN IK IX) and the 23 deferred ones
// (NK1 ... I1X1), all from section 7, each optionally with psk modifiers (psk0, psk1,
// ..., combined with '+', e.g. "XXpsk3", "NNpsk0+psk2"). Not supported: the
// fallback modifier, hybrid/PQ tokens, and any DH/cipher/hash other than
// 25519/ChaChaPoly/BLAKE2b.
#ifndef DPNODE_CRYPTO_NOISE_PATTERN_H_
#define DPNODE_CRYPTO_NOISE_PATTERN_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dpnode::crypto::noise {

enum class Token { kE, kS, kEE, kES, kSE, kSS, kPsk };

const char* TokenName(Token token);  // "e", "s", "ee", ...

struct MessagePattern {
  bool from_initiator = true;  // "->" (true) or "<-" (false)
  std::vector<Token> tokens;
};

struct HandshakePattern {
  std::string name;                  // "XXpsk3": base name plus modifiers
  std::vector<Token> initiator_pre;  // pre-message "-> ..." (subset of e, s)
  std::vector<Token> responder_pre;  // pre-message "<- ..."
  std::vector<MessagePattern> messages;
  bool one_way = false;  // N, K, X (and their psk variants)

  int PskCount() const;  // psk tokens in the messages
  bool IsPskMode() const { return PskCount() > 0; }
  std::string ToString() const;  // spec notation, one message a line
};

// "XX", "IKpsk2", "NNpsk0+psk2" -> the pattern with psk tokens placed per
// section 9 (psk0 first in message 1; pskN last in message N).
// kNotFound for an unknown base pattern or modifier; kInvalidArgument for a
// pskN beyond the last message.
Result<HandshakePattern> LookupPattern(std::string_view name);

// Names of all base patterns in the table (without modifiers), for tests.
std::vector<std::string> BasePatternNames();

// "Noise_XX_25519_ChaChaPoly_BLAKE2b" -> the XX pattern. kNotFound when the
// name is well-formed but asks for something not implemented (other
// primitives, unknown pattern or modifier); kInvalidArgument when malformed.
Result<HandshakePattern> ParseProtocolName(std::string_view protocol_name);

}  // namespace dpnode::crypto::noise

#endif  // DPNODE_CRYPTO_NOISE_PATTERN_H_
