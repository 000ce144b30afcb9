// Averaging policies: how a site mixes its model with its neighbours'.
//
// A policy owns the site's view of the shared parameter vector (flattened in
// the model's layout order; see share_codec.h for names and shapes) and
// decides what to send whom. It does no I/O and reads no clock: the Node calls
// OnTick on its gossip timer and OnShare for each validated incoming share,
// and sends the Outgoing shares the policy returns. The Node may also report
// a share it could not hand to a link (Undeliverable), so the policy can take
// back what it gave away.
//
// Three policies:
//   PushSumPolicy   push-sum / stochastic gradient push (the default).
//                   Asynchronous, tolerates loss and one-way links. Keeps a
//                   numerator z = x·w (double) and a weight w; each tick it
//                   gives half of (z, w) to one random partner. The estimate
//                   is z / w. Without loss, Σz and Σw over all sites and
//                   in-flight shares are conserved exactly up to double
//                   rounding (the wire's float32 rounding is charged to the
//                   sender, see below).
//   PairwisePolicy  randomized pairwise gossip: an offer of x_i to a random
//                   partner j; j moves to the midpoint and answers with its
//                   own value; i moves to the midpoint. Updates are applied as
//                   deltas of the values actually sent, so Σx is conserved even
//                   when exchanges overlap. One offer is outstanding at a
//                   time; an offer from the peer we are waiting on is declined
//                   ("busy", also what two crossing offers get), and answers
//                   are matched to the offer's sequence number, so a late
//                   answer never completes a newer offer. A lost answer breaks
//                   conservation (this policy assumes reliable links); a
//                   refused send (backpressure) does not: it is undone.
//   DpsgdPolicy     synchronous D-PSGD with Metropolis–Hastings weights
//                   w_ij = 1 / (1 + max(d_i, d_j)): each round a site sends
//                   x to every neighbour and, once it holds every neighbour's
//                   value for that round, sets x += Σ_j w_ij (x_j − x_i). A
//                   neighbour silent for `round_timeout` is left out of that
//                   round (its weight stays with us), and so is one that
//                   left partner choice (declared dead), so a dead peer
//                   delays its neighbours by at most one timeout, never
//                   forever. Requires a symmetric, stable neighbour set for
//                   exact averaging.
//
// Wire rounding: values go on the wire as float32 unless the Node is set up
// for float64. Every policy rounds what it sends first (RoundForWire) and
// computes its own update from the rounded values, so rounding never creates
// or destroys mass.
//
// Threading: one event loop; not thread-safe.
#ifndef DPNODE_NODE_GOSSIP_AVERAGING_H_
#define DPNODE_NODE_GOSSIP_AVERAGING_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/env.h"

namespace dpnode::gossip {

enum class PolicyKind { kPushSum, kPairwise, kDpsgd };
const char* PolicyKindName(PolicyKind kind);  // "push-sum", "pairwise", "d-psgd"
// Parses the names above.
Result<PolicyKind> ParsePolicyKind(const std::string& name);

// One share's content, as the policies see it. `values` has the layout's
// length; `weight` is finite and > 0 (its meaning depends on the policy: the
// push-sum weight given away; 1, 0.5, 0.25 for a pairwise offer, answer,
// decline; the sender's degree in D-PSGD).
struct Share {
  uint64_t round = 0;
  double weight = 1.0;
  std::vector<double> values;
};

struct Outgoing {
  PeerId to{};
  Share share;
};

struct PolicyOptions {
  // Round values to float32 before sending (the wire dtype is float32).
  bool float32_wire = true;
  // D-PSGD: how long a round waits for a silent neighbour. Pairwise: how long
  // an offer waits for its answer before another may be made.
  Duration round_timeout = std::chrono::seconds(5);
};

class AveragingPolicy {
 public:
  virtual ~AveragingPolicy() = default;
  virtual PolicyKind kind() const = 0;

  // The site's current model estimate (length = dimension()).
  virtual std::vector<double> Estimate() const = 0;
  size_t dimension() const { return dimension_; }

  // Applies a local training step's change (`delta`, dimension() long,
  // measured on the estimate the step started from): the estimate moves by
  // exactly `delta` (push-sum adds w·delta to its numerator).
  virtual void ApplyLocalDelta(const std::vector<double>& delta) = 0;

  // The gossip timer fired. `partners` are the peers currently fit to
  // receive (linked, greeted, alive), in a stable order; partner choice uses
  // `rng`. Appends what to send to `out`.
  virtual void OnTick(TimePoint now, const std::vector<PeerId>& partners, Rng& rng,
                      std::vector<Outgoing>* out) = 0;

  // A validated share from `from` (dimension() values, weight finite > 0).
  // May append replies to `out` (also when it returns kOutOfRange). Returns
  // kOutOfRange for a share that did not mix anything in but that an honest
  // peer may send (a stale round after a reconnect, a late answer, a
  // declined pairwise offer): the Node counts it as stale without blaming
  // the peer, and it does not count as mixing for the settle check. InvalidArgument for a share no honest peer sends (a pairwise
  // weight that is neither offer nor answer, an absurd D-PSGD round): the
  // Node blames the peer. Either way the model is untouched.
  virtual Status OnShare(TimePoint now, const PeerId& from, const Share& share,
                         std::vector<Outgoing>* out) = 0;

  // The Node could not hand `share` (one this policy produced) to the link:
  // the policy takes back what it gave away.
  virtual void Undeliverable(const Outgoing& share) = 0;

  // Completed averaging rounds (push-sum and pairwise: ticks that sent).
  virtual uint64_t round() const = 0;

  // Push-sum bookkeeping, for conservation checks. Other policies report
  // numerator = estimate and weight = 1.
  virtual std::vector<double> Numerator() const { return Estimate(); }
  virtual double Weight() const { return 1.0; }

 protected:
  explicit AveragingPolicy(size_t dimension) : dimension_(dimension) {}
  std::vector<double> RoundForWire(const std::vector<double>& v) const;
  PolicyOptions options_;

 private:
  size_t dimension_;
};

// Creates a policy starting from `initial` (the site's initial parameters).
std::unique_ptr<AveragingPolicy> MakePolicy(PolicyKind kind, std::vector<double> initial,
                                            const PolicyOptions& options = {});

class PushSumPolicy : public AveragingPolicy {
 public:
  PushSumPolicy(std::vector<double> initial, const PolicyOptions& options);
  PolicyKind kind() const override { return PolicyKind::kPushSum; }
  std::vector<double> Estimate() const override;
  void ApplyLocalDelta(const std::vector<double>& delta) override;
  void OnTick(TimePoint now, const std::vector<PeerId>& partners, Rng& rng,
              std::vector<Outgoing>* out) override;
  Status OnShare(TimePoint now, const PeerId& from, const Share& share,
                 std::vector<Outgoing>* out) override;
  void Undeliverable(const Outgoing& share) override;
  uint64_t round() const override { return round_; }
  std::vector<double> Numerator() const override { return z_; }
  double Weight() const override { return w_; }

 private:
  std::vector<double> z_;  // numerators x·w
  double w_ = 1.0;
  uint64_t round_ = 0;
};

class PairwisePolicy : public AveragingPolicy {
 public:
  PairwisePolicy(std::vector<double> initial, const PolicyOptions& options);
  PolicyKind kind() const override { return PolicyKind::kPairwise; }
  std::vector<double> Estimate() const override { return x_; }
  void ApplyLocalDelta(const std::vector<double>& delta) override;
  void OnTick(TimePoint now, const std::vector<PeerId>& partners, Rng& rng,
              std::vector<Outgoing>* out) override;
  Status OnShare(TimePoint now, const PeerId& from, const Share& share,
                 std::vector<Outgoing>* out) override;
  void Undeliverable(const Outgoing& share) override;
  uint64_t round() const override { return round_; }

  // The share's weight says what it is; its round carries the offer's
  // sequence number (an answer or a decline echoes it).
  static constexpr double kOfferWeight = 1.0;
  static constexpr double kAnswerWeight = 0.5;
  static constexpr double kBusyWeight = 0.25;  // declined; values unused

 private:
  std::vector<double> x_;
  uint64_t offers_ = 0;  // offers made; the next offer's sequence number
  // The offer awaiting an answer: to whom, its number, the values sent, when.
  bool pending_ = false;
  PeerId pending_peer_{};
  uint64_t pending_offer_ = 0;
  std::vector<double> pending_sent_;
  TimePoint pending_since_{};
  // The change our last answer caused, undone if the answer cannot be sent.
  PeerId last_answer_peer_{};
  std::vector<double> last_answer_delta_;
  uint64_t round_ = 0;
};

class DpsgdPolicy : public AveragingPolicy {
 public:
  DpsgdPolicy(std::vector<double> initial, const PolicyOptions& options);
  PolicyKind kind() const override { return PolicyKind::kDpsgd; }
  std::vector<double> Estimate() const override { return x_; }
  void ApplyLocalDelta(const std::vector<double>& delta) override;
  void OnTick(TimePoint now, const std::vector<PeerId>& partners, Rng& rng,
              std::vector<Outgoing>* out) override;
  Status OnShare(TimePoint now, const PeerId& from, const Share& share,
                 std::vector<Outgoing>* out) override;
  void Undeliverable(const Outgoing& share) override;
  uint64_t round() const override { return round_; }

 private:
  struct Received {
    double degree = 0;
    std::vector<double> values;
  };
  // Starts round_ with `neighbours`: sends our rounded value to each.
  void StartRound(TimePoint now, const std::vector<PeerId>& neighbours,
                  std::vector<Outgoing>* out);
  // Finishes round_ if every neighbour has answered (or `force`); the next
  // round starts on the next tick, which paces rounds by the gossip timer.
  void MaybeFinishRound(bool force);

  std::vector<double> x_;
  std::vector<PeerId> latest_partners_;  // from the last tick
  uint64_t round_ = 0;  // the round in progress (or the next to start)
  bool in_round_ = false;
  std::vector<PeerId> neighbours_;  // this round's neighbour set
  std::vector<double> sent_;        // our rounded value for this round
  TimePoint round_started_{};
  std::set<PeerId> undeliverable_;  // neighbours we could not reach this round
  std::map<uint64_t, std::map<PeerId, Received>> inbox_;  // by round
};

}  // namespace dpnode::gossip

#endif  // DPNODE_NODE_GOSSIP_AVERAGING_H_
