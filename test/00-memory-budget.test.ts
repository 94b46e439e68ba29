// The one memory budget without a model: taking, giving back, and asking others to make room.
import t from 'tap'
import { MemoryBudget, type BudgetHolder } from '../lib/memory-budget.js'

t.test('take, give, and make room by asking holders in order', async (t) => {
  const budget = new MemoryBudget(100)
  const model: BudgetHolder = { name: 'model' }
  let cached = 50
  const cache: BudgetHolder = {
    name: 'prompt cache',
    giveBack: (bytes) => {
      const freed = Math.min(bytes, cached)
      cached -= freed
      return freed
    },
  }
  t.ok(budget.take(cache, 50))
  t.ok(budget.take(model, 40))
  t.equal(budget.freeBytes, 10)
  t.notOk(budget.take(model, 30), 'no room and nobody asked')
  t.equal(budget.heldBy(model), 40, 'a refused take takes nothing')
  t.ok(budget.take(model, 30, [cache]), 'the cache gives back what is missing')
  t.equal(budget.heldBy(cache), 30)
  t.equal(cached, 30)
  t.notOk(budget.take(model, 50, [cache]), 'even all of the cache is not enough')
  t.equal(budget.heldBy(cache), 0, 'what was given back stays given back')
  budget.give(model, 20)
  t.equal(budget.heldBy(model), 50)
  budget.release(model)
  t.equal(budget.usedBytes, 0)
  t.throws(() => new MemoryBudget(0))
  t.ok(MemoryBudget.fromMachine().totalBytes > 0)
})
