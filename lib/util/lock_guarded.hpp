// util: LockGuarded<T>, data that lives with its mutex (PowerDNS's pattern):
// the only way to reach the T is through a Handle that holds the lock.
// Decides nothing; never blocks except on the mutex. Thread-safe by construction.
#pragma once

#include <mutex>
#include <utility>

namespace regmilter::util {

template <typename T>
class LockGuarded {
public:
    template <typename... Args>
    explicit LockGuarded(Args&&... args) : value_(std::forward<Args>(args)...) {}
    LockGuarded(const LockGuarded&) = delete;
    LockGuarded& operator=(const LockGuarded&) = delete;

    // Holds the lock for its lifetime; use it in one scope, never store it.
    class Handle {
    public:
        Handle(std::mutex& m, T& v) : lock_(m), value_(v) {}
        T* operator->() { return &value_; }
        T& operator*() { return value_; }
        std::unique_lock<std::mutex>& lock() { return lock_; }  // for condition variables

    private:
        std::unique_lock<std::mutex> lock_;
        T& value_;
    };

    Handle lock() { return Handle(mutex_, value_); }

private:
    std::mutex mutex_;
    T value_;
};

}  // namespace regmilter::util
