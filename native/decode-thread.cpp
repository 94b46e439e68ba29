#include "decode-thread.h"

#include <cstdio>
#include <exception>

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
        // jobs catch their own failures and settle their promise; this is the last guard so that a job
        // that does not can never end the process from this thread
        try {
            job();
        } catch (const std::exception & e) {
            fprintf(stderr, "hearth: uncaught exception on the decode thread: %s\n", e.what());
        } catch (...) {
            fprintf(stderr, "hearth: uncaught exception on the decode thread\n");
        }
    }
}
