// One long-lived thread per context that runs every decode step, as llama-server's main loop does.
// llama.cpp's CPU backend forms its OpenMP team from the thread that calls llama_decode: steps taken from the
// libuv pool would give each pool thread a team of its own, and with several teams libgomp stops spinning
// at barriers (it sees more threads than cores), which measured ~20% slower decode on 2 cores.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

class decode_thread {
  public:
    decode_thread();
    ~decode_thread(); // finishes the job in hand, then joins

    decode_thread(const decode_thread &) = delete;
    decode_thread & operator=(const decode_thread &) = delete;

    // Any thread. Runs `job` on the decode thread; one job at a time (the caller keeps that promise). A job
    // must catch its own exceptions (it alone can report them); one that escapes is logged and dropped.
    void post(std::function<void()> job);

  private:
    void loop();

    std::mutex              mutex;
    std::condition_variable cv;
    std::function<void()>   pending;
    bool                    stopping = false;
    std::thread             thread; // last: started once the members above exist
};
