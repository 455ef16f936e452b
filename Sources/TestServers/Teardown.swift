import Foundation

/// Every server process the harness started, killed by pid when the test
/// process exits or is interrupted, also when a test failed.
enum Teardown {
    nonisolated(unsafe) private static var pids: Set<Int32> = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var installed = false

    /// Remembers a server's pid; installs the exit and signal hooks once.
    static func track(_ pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        pids.insert(pid)
        guard !installed else { return }
        installed = true
        atexit { Teardown.killAll() }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { received in
                Teardown.killAll()
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    /// Forgets a pid that was stopped cleanly.
    static func untrack(_ pid: Int32) {
        lock.lock()
        pids.remove(pid)
        lock.unlock()
    }

    /// SIGCONT (a stopped server cannot die) then SIGKILL to every tracked pid.
    static func killAll() {
        // No lock here: this may run in a signal handler; a torn read only risks a missed kill.
        for pid in pids {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
        }
    }
}
