import Testing

@testable import ConnectionKit

/// Yields until `condition` holds (a scheduling wait, bounded).
private func until(_ condition: () -> Bool) async {
    for _ in 0..<10_000 where !condition() { await Task.yield() }
}

@Suite("ParkedWaiters and AsyncLock: parking, handing over, cancellation, order")
struct WaitersAndLockTests {
    @Test("a value handed before its waiter parks is found when it parks; one handed after wakes it")
    func eitherOrder() async {
        let waiters = ParkedWaiters<Int>()
        waiters.resume(1, with: 10)
        #expect(await waiters.park(1) { nil } == 10)
        let parked = Task { await waiters.park(2) { nil } }
        await until { waiters.state.withLock { $0.parked[2] != nil } }
        waiters.resume(2, with: 20)
        #expect(await parked.value == 20)
        #expect(waiters.state.withLock { $0.parked.isEmpty && $0.early.isEmpty })
    }

    @Test("cancellation leaves with the value the shell gives; nil keeps the waiter for the value on its way")
    func cancellation() async {
        let waiters = ParkedWaiters<Int>()
        let leaving = Task { await waiters.park(1) { -1 } }
        leaving.cancel()
        #expect(await leaving.value == -1)
        let staying = Task { await waiters.park(2) { nil } }
        await until { waiters.state.withLock { $0.parked[2] != nil } }
        staying.cancel()
        waiters.resume(2, with: 7)
        #expect(await staying.value == 7)
    }

    @Test("AsyncLock: waiters get the lock in arrival order; a cancelled one leaves the line; a non-cancellable one stays")
    func lockOrder() async {
        let lock = AsyncLock()
        #expect(await lock.lock())
        let order = Locked<[Int]>([])
        var tasks: [Task<Bool, Never>] = []
        for index in 0..<3 {
            tasks.append(
                Task {
                    let granted = await lock.lock(cancellable: index != 2)
                    if granted {
                        order.withLock { $0.append(index) }
                        lock.unlock()
                    }
                    return granted
                })
            await until { lock.waiting == index + 1 }  // in line before the next one comes
        }
        #expect(lock.waiting == 3)
        tasks[1].cancel()
        #expect(await tasks[1].value == false)
        #expect(lock.waiting == 2)
        tasks[2].cancel()  // not cancellable: it keeps its place
        lock.unlock()
        let first = await tasks[0].value
        let third = await tasks[2].value
        #expect(first && third)
        #expect(order.withLock { $0 } == [0, 2])
        #expect(await lock.lock())  // free again
    }
}
