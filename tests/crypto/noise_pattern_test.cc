// The pattern table and name parser, and a handshake plus transport round
// trip for every supported pattern (with and without PSK modifiers) between
// random keys.
#include "crypto/noise_pattern.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "crypto/noise_handshake.h"
#include "tests/crypto/noise_test_util.h"

namespace dpnode::crypto::noise {
namespace {

using testing::CompleteHandshake;
using testing::MustCreate;
using testing::RandomKeyPair;
using testing::Text;

bool Contains(const std::vector<Token>& tokens, Token t) {
  for (Token x : tokens) {
    if (x == t) return true;
  }
  return false;
}

bool Sends(const HandshakePattern& p, bool initiator, Token t) {
  for (const MessagePattern& m : p.messages) {
    if (m.from_initiator == initiator && Contains(m.tokens, t)) return true;
  }
  return false;
}

TEST_CASE("the table covers the one-way, fundamental and deferred patterns") {
  std::vector<std::string> names = BasePatternNames();
  CHECK(names.size() == 3 + 12 + 23);
  Result<HandshakePattern> xx = LookupPattern("XX");
  REQUIRE(xx.ok());
  CHECK(xx->ToString() == "XX:\n  -> e\n  <- e, ee, s, es\n  -> s, se\n");
  CHECK_FALSE(xx->one_way);
  Result<HandshakePattern> n = LookupPattern("N");
  REQUIRE(n.ok());
  CHECK(n->one_way);
  CHECK(n->ToString() == "N:\n  <- s\n  ...\n  -> e, es\n");
}

TEST_CASE("psk modifiers place psk tokens per spec section 9") {
  Result<HandshakePattern> p = LookupPattern("NNpsk0+psk2");
  REQUIRE(p.ok());
  CHECK(p->PskCount() == 2);
  CHECK(p->messages[0].tokens.front() == Token::kPsk);
  CHECK(p->messages[1].tokens.back() == Token::kPsk);
  Result<HandshakePattern> xx3 = LookupPattern("XXpsk3");
  REQUIRE(xx3.ok());
  CHECK(xx3->messages[2].tokens.back() == Token::kPsk);
  CHECK(LookupPattern("XXpsk4").status().code() == StatusCode::kInvalidArgument);
  CHECK(LookupPattern("XXfallback").status().code() == StatusCode::kNotFound);
  CHECK(LookupPattern("XXpsk").status().code() == StatusCode::kNotFound);
  CHECK(ParseProtocolName("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b")->name == "IKpsk2");
}

// Config for one side of `pattern`: both sides always get a static key; the
// peer's static key is passed exactly when the pattern has it as a pre-message.
HandshakeConfig SideConfig(const std::string& protocol, const HandshakePattern& pattern, Role role,
                           const KeyPair& local, const KeyPair& remote,
                           const std::vector<SymmetricKey>& psks) {
  HandshakeConfig c;
  c.protocol_name = protocol;
  c.role = role;
  c.prologue = Text("pattern test");
  c.local_static = local;
  const auto& remote_pre = role == Role::kInitiator ? pattern.responder_pre : pattern.initiator_pre;
  if (Contains(remote_pre, Token::kS)) c.remote_static = remote.public_key;
  c.psks = psks;
  return c;
}

TEST_CASE("every supported pattern handshakes and carries transport data") {
  int runs = 0;
  for (const std::string& base : BasePatternNames()) {
    Result<HandshakePattern> base_pattern = LookupPattern(base);
    REQUIRE(base_pattern.ok());
    std::vector<std::string> variants = {base, base + "psk0"};
    for (size_t k = 1; k <= base_pattern->messages.size(); ++k) {
      variants.push_back(base + "psk" + std::to_string(k));
    }
    for (const std::string& name : variants) {
      CAPTURE(name);
      const std::string protocol = "Noise_" + name + "_25519_ChaChaPoly_BLAKE2b";
      Result<HandshakePattern> pattern = ParseProtocolName(protocol);
      REQUIRE(pattern.ok());
      KeyPair init_static = RandomKeyPair();
      KeyPair resp_static = RandomKeyPair();
      std::vector<SymmetricKey> psks(pattern->PskCount(),
                                     SymmetricKey(testing::Hex(std::string(64, 'a'))));
      HandshakeState init = MustCreate(
          SideConfig(protocol, *pattern, Role::kInitiator, init_static, resp_static, psks));
      HandshakeState resp = MustCreate(
          SideConfig(protocol, *pattern, Role::kResponder, resp_static, init_static, psks));
      CompleteHandshake(&init, &resp);
      CHECK(ConstantTimeEqual(init.handshake_hash(), resp.handshake_hash()));
      // Whoever learned a static key learned the right one.
      if (Sends(*pattern, false, Token::kS) || Contains(pattern->responder_pre, Token::kS)) {
        REQUIRE(init.remote_static().has_value());
        CHECK(*init.remote_static() == resp_static.public_key);
      }
      if (Sends(*pattern, true, Token::kS) || Contains(pattern->initiator_pre, Token::kS)) {
        REQUIRE(resp.remote_static().has_value());
        CHECK(*resp.remote_static() == init_static.public_key);
      }
      Result<TransportCiphers> ic = init.Split();
      Result<TransportCiphers> rc = resp.Split();
      REQUIRE(ic.ok());
      REQUIRE(rc.ok());
      REQUIRE((ic->send && rc->receive));
      Bytes ct = *ic->send->EncryptWithAd(ByteView(), Text("to responder"));
      Result<Bytes> pt = rc->receive->DecryptWithAd(ByteView(), ct);
      REQUIRE(pt.ok());
      CHECK(*pt == Text("to responder"));
      if (pattern->one_way) {
        CHECK_FALSE(ic->receive.has_value());
        CHECK_FALSE(rc->send.has_value());
      } else {
        REQUIRE((rc->send && ic->receive));
        Bytes back = *rc->send->EncryptWithAd(ByteView(), Text("to initiator"));
        Result<Bytes> got = ic->receive->DecryptWithAd(ByteView(), back);
        REQUIRE(got.ok());
        CHECK(*got == Text("to initiator"));
      }
      ++runs;
    }
  }
  // 38 base patterns, each plain and psk0, plus one pskN per message (101 in all).
  CHECK(runs == 2 * 38 + 101);
}

}  // namespace
}  // namespace dpnode::crypto::noise
