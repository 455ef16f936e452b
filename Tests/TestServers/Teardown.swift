import Foundation

/// Every server process the harness started, killed by pid when the test
/// process exits or is interrupted, also when a test failed.
enum Teardown {
    nonisolated(unsafe) private static var pids: Set<Int32> = []
    nonisolated(unsafe) private static var folders: Set<String> = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var installed = false

    /// Remembers a server's pid; installs the exit and signal hooks once.
    static func track(_ pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        pids.insert(pid)
        installHooksOnce()
    }

    /// Installs the exit and signal hooks; called with the lock held.
    private static func installHooksOnce() {
        guard !installed else { return }
        installed = true
        atexit {
            Teardown.killAll()
            Teardown.removeFolders()
        }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { received in
                Teardown.killAll()
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    /// Remembers a folder to remove at exit (after its server is killed).
    static func track(folder: String) {
        lock.lock()
        defer { lock.unlock() }
        folders.insert(folder)
        installHooksOnce()
    }

    /// Removes every tracked folder (at exit, not from a signal handler).
    static func removeFolders() {
        lock.lock()
        let all = folders
        lock.unlock()
        for folder in all { try? FileManager.default.removeItem(atPath: folder) }
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
