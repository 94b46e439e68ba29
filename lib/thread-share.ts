// CPU threads shared by the models loaded in one process. Each model's context is created with all of them (its
// thread pools are that large); before each decode step it asks how many it may use now: all of them while it is
// the only model with work, an equal share while others have work too. Two models decoding at once with every
// thread each would put more threads than cores on the machine: libgomp then stops spinning at barriers, which
// native/decode-thread.h measured as ~20% slower decode on 2 cores, and the teams preempt each other.

/** A model as the share sees it. */
export interface ThreadUser {
  /** it has requests running or queued */
  busy(): boolean
}

export class ThreadShare {
  /** threads all models together may use */
  readonly total: number
  readonly #users = new Set<ThreadUser>()

  constructor(total: number) {
    if (!Number.isInteger(total) || total < 1) throw new RangeError('a thread share needs at least one thread')
    this.total = total
  }

  add(user: ThreadUser): void {
    this.#users.add(user)
  }

  remove(user: ThreadUser): void {
    this.#users.delete(user)
  }

  /**
   * Threads `user` may use for its next step: the total divided among the users that are busy now (`user`
   * counts as busy: it is about to step), at least 1. The first busy users in the order they were added get the
   * remainder's extra thread each, so the shares add up to the total.
   */
  threadsFor(user: ThreadUser): number {
    const busy = [...this.#users].filter((u) => u === user || u.busy())
    if (!busy.includes(user)) busy.push(user)
    const n = busy.length
    const base = Math.floor(this.total / n)
    if (base === 0) return 1
    return base + (busy.indexOf(user) < this.total % n ? 1 : 0)
  }
}
