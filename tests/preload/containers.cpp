// Preload workload: C++ standard containers.
//
// operator new/delete in libstdc++ forward to malloc/free, so every node,
// bucket array and string buffer below reaches the preloaded allocator.
// Two threads hand shared_ptr-owned objects to each other so that some
// objects are freed on a thread other than the one that allocated them.
// Output is order-independent checksums only.
#include <cstdint>
#include <cstdio>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Rng {
  std::uint64_t x;
  std::uint32_t next() {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(x >> 33);
  }
};

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

std::uint64_t vectors_and_strings(Rng &r) {
  std::uint64_t h = 0;
  for (int round = 0; round < 120; round++) {
    std::vector<std::string> v;
    for (int i = 0; i < 5000; i++) {
      std::string s(1 + r.next() % 200, static_cast<char>('a' + i % 26));
      s += std::to_string(i);
      v.push_back(std::move(s));
    }
    v.erase(v.begin(), v.begin() + 1000);
    v.shrink_to_fit();
    for (const auto &s : v) h = mix(h, s.size() + static_cast<unsigned char>(s.back()));
  }
  return h;
}

std::uint64_t maps(Rng &r) {
  std::uint64_t h = 0;
  for (int round = 0; round < 60; round++) {
    std::map<std::string, std::vector<int>> ordered;
    std::unordered_map<std::uint32_t, std::string> hashed;
    for (int i = 0; i < 8000; i++) {
      std::uint32_t k = r.next() % 4000;
      ordered["key" + std::to_string(k)].push_back(i);
      hashed[k] += static_cast<char>('A' + i % 26);
    }
    for (auto it = ordered.begin(); it != ordered.end();) {
      it = (it->second.size() % 2) ? ordered.erase(it) : std::next(it);
    }
    hashed.rehash(hashed.size() * 4);
    for (const auto &kv : ordered) h = mix(h, kv.first.size() * 31 + kv.second.size());
    std::uint64_t sum = 0;  // unordered iteration order must not matter
    for (const auto &kv : hashed) sum += kv.first * 7 + kv.second.size();
    h = mix(h, sum);
  }
  return h;
}

std::uint64_t lists(Rng &r) {
  std::list<std::vector<std::uint32_t>> l;
  std::uint64_t h = 0;
  for (int i = 0; i < 60000; i++) {
    l.emplace_back(1 + r.next() % 64, static_cast<std::uint32_t>(i));
    if (l.size() > 2000) {
      h = mix(h, l.front().size() + l.front()[0]);
      l.pop_front();
    }
  }
  l.sort([](const auto &a, const auto &b) { return a.size() < b.size() || (a.size() == b.size() && a[0] < b[0]); });
  for (const auto &v : l) h = mix(h, v.size());
  return h;
}

struct Node {
  std::string name;
  std::vector<std::shared_ptr<Node>> kids;
};

// Producer builds shared_ptr trees; consumer drops the last reference.
std::uint64_t cross_thread(Rng &r) {
  std::mutex mu;
  std::vector<std::shared_ptr<Node>> mailbox;
  bool done = false;
  std::uint64_t consumed = 0;
  unsigned seed = r.next();
  std::thread producer([&] {
    Rng pr{seed};
    for (int i = 0; i < 20000; i++) {
      auto root = std::make_shared<Node>();
      root->name = "root" + std::to_string(i);
      for (unsigned k = 0; k < 1 + pr.next() % 16; k++) {
        root->kids.push_back(std::make_shared<Node>(Node{std::string(pr.next() % 100, 'k'), {}}));
      }
      std::lock_guard<std::mutex> g(mu);
      mailbox.push_back(std::move(root));
    }
    std::lock_guard<std::mutex> g(mu);
    done = true;
  });
  std::thread consumer([&] {
    for (;;) {
      std::vector<std::shared_ptr<Node>> batch;
      bool finished;
      {
        std::lock_guard<std::mutex> g(mu);
        batch.swap(mailbox);
        finished = done;
      }
      for (const auto &n : batch) {
        std::uint64_t sz = n->name.size();
        for (const auto &k : n->kids) sz += k->name.size();
        consumed += sz + n->kids.size();
      }
      if (finished && batch.empty()) break;
      std::this_thread::yield();
    }
  });
  producer.join();
  consumer.join();
  return consumed;
}

}  // namespace

int main() {
  Rng r{42};
  std::printf("vectors %llu\n", static_cast<unsigned long long>(vectors_and_strings(r)));
  std::printf("maps %llu\n", static_cast<unsigned long long>(maps(r)));
  std::printf("lists %llu\n", static_cast<unsigned long long>(lists(r)));
  std::printf("threads %llu\n", static_cast<unsigned long long>(cross_thread(r)));
  return 0;
}
