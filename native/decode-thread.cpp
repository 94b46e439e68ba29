#include "decode-thread.h"

decode_thread::decode_thread() : thread([this] { loop(); }) {}

decode_thread::~decode_thread() {
    {
        std::lock_guard<std::mutex> lock(mutex);
        stopping = true;
    }
    cv.notify_one();
    thread.join();
}

void decode_thread::post(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex);
        pending = std::move(job);
    }
    cv.notify_one();
}

void decode_thread::loop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock<std::mutex> lock(mutex);
            cv.wait(lock, [this] { return stopping || pending; });
            if (!pending) return; // stopping with nothing left to do
            job = std::move(pending);
            pending = nullptr;
        }
        job();
    }
}
