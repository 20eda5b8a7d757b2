// state: keys (SHA-256 digests, never the text they name) and outcome names.
#include "state/store.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <ctime>
#include <memory>

namespace regmilter::state {

UnixTime wall_now() {
    return static_cast<UnixTime>(std::time(nullptr));
}

const char* to_string(Status s) {
    switch (s) {
        case Status::ok:
            return "ok";
        case Status::timeout:
            return "timeout";
        case Status::unreachable:
            return "unreachable";
        case Status::wrong_type:
            return "wrong-type";
        case Status::full:
            return "full";
        case Status::failed:
            return "failed";
    }
    return "failed";
}

const char* to_string(Event e) {
    switch (e) {
        case Event::none:
            return "none";
        case Event::outage_began:
            return "outage-began";
        case Event::outage_ended:
            return "outage-ended";
    }
    return "none";
}

const char* to_string(TripletState s) {
    switch (s) {
        case TripletState::created:
            return "created";
        case TripletState::early:
            return "early";
        case TripletState::passed_now:
            return "passed-now";
        case TripletState::passed:
            return "passed";
        case TripletState::allowed:
            return "allowed";
    }
    return "created";
}

namespace {

// SHA-256 with the algorithm fetched once and a context per thread: OpenSSL
// 3's one-shot SHA256() looks the algorithm up on every call, which costs
// several times the hashing of a short text.
void sha256(std::string_view text, unsigned char* md) {
    static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(),
                                                                              &EVP_MD_CTX_free);
    unsigned int len = 0;
    if (algorithm && ctx && EVP_DigestInit_ex2(ctx.get(), algorithm, nullptr) == 1 &&
        EVP_DigestUpdate(ctx.get(), text.data(), text.size()) == 1 &&
        EVP_DigestFinal_ex(ctx.get(), md, &len) == 1 && len == SHA256_DIGEST_LENGTH)
        return;
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
}

}  // namespace

Key Key::of(KeyKind kind, std::string_view canonical) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    sha256(canonical, md);
    Key k;
    k.kind = kind;
    for (size_t i = 0; i < k.digest.size(); ++i) k.digest[i] = md[i];
    return k;
}

std::string Key::hex() const {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(digest.size() * 2);
    for (uint8_t b : digest) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string Key::text() const {
    return std::string(1, char(kind)) + ":" + hex();
}

GreylistAnswer Store::client(const Key&, const GreylistRules&, UnixTime, Mode, Deadline) {
    return GreylistAnswer{};
}

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}
}  // namespace

bool Key::parse(std::string_view text, Key& out) {
    if (text.size() != 34 || text[1] != ':') return false;
    char kind = text[0];
    if (kind != char(KeyKind::triplet) && kind != char(KeyKind::client) && kind != char(KeyKind::counter))
        return false;
    Key k;
    k.kind = static_cast<KeyKind>(kind);
    for (size_t i = 0; i < k.digest.size(); ++i) {
        int hi = hex_value(text[2 + 2 * i]), lo = hex_value(text[3 + 2 * i]);
        if (hi < 0 || lo < 0) return false;
        k.digest[i] = uint8_t(hi << 4 | lo);
    }
    out = k;
    return true;
}

}  // namespace regmilter::state
