import CMariaDB
import Foundation
import SocketReactor

/// The time a run of Connector/C calls may take, and how a cancelled task ends it.
struct CallBudget {
    /// When the run is given up (connect or query timeout); `nil`: never.
    var deadline: ContinuousClock.Instant?
    /// `nil`: the run ignores cancellation (rollback, close). `.zero`: it stops
    /// at once (connecting). Otherwise the server is asked to stop the statement
    /// and has this long to confirm it before the connection is given up.
    let cancelGrace: Duration?
    /// Set when the task was seen cancelled.
    var cancelDeadline: ContinuousClock.Instant?
    /// How long the server may stay silent before a new connection asks whether it still
    /// answers (``ServerLiveness``); `nil`: never.
    var livenessCheckAfter: Duration?
    /// The task's deadline (`SQLDeadline`): when it passes, ``onSoftDeadline`` asks the server to
    /// stop the statement and the run goes on as for a cancelled task (within ``cancelGrace``).
    var softDeadline: ContinuousClock.Instant? = nil
    /// Sends the server the request to stop the statement.
    var onSoftDeadline: (@Sendable () -> Void)? = nil

    /// The earlier of the deadlines.
    var earliest: ContinuousClock.Instant? {
        [deadline, cancelDeadline, cancelDeadline == nil ? softDeadline : nil].compactMap { $0 }.min()
    }

    /// Whether the task's deadline has passed and the statement is not being stopped yet.
    var softDeadlinePassed: Bool {
        guard cancelDeadline == nil, cancelGrace != nil, let softDeadline else { return false }
        return softDeadline <= .now
    }
}

/// Why a non-blocking call stopped before it finished; the handle was abandoned.
enum CallStall: Error {
    case deadline
    case cancelled
    /// The server said nothing for the budget's liveness interval and did not answer a new connection.
    case serverSilent
}

/// Runs one Connector/C non-blocking call (`mysql_*_start` / `mysql_*_cont`)
/// to completion, waiting for the socket through `SocketReactor` so that no
/// thread ever blocks.
///
/// `start` and `resume` return the events the call waits for (`MYSQL_WAIT_*`;
/// 0 when it is done). When a deadline passes first, the call is abandoned:
/// the socket is shut down and the call resumed until it fails, so the handle
/// is left consistent (and unusable) for `mysql_close`.
func runNonBlocking(
    _ mysql: UnsafeMutablePointer<MYSQL>, budget: inout CallBudget,
    start: () -> Int32, resume: (Int32) -> Int32
) async throws(CallStall) {
    var waiting = start()
    var heard = ContinuousClock.now  // the last sign of life from the server
    while waiting != 0 {
        if let grace = budget.cancelGrace, budget.cancelDeadline == nil, Task.isCancelled {
            budget.cancelDeadline = .now + grace
        }
        if budget.softDeadlinePassed, let grace = budget.cancelGrace {
            budget.onSoftDeadline?()
            budget.cancelDeadline = .now + grace
        }
        let libraryTimeout: ContinuousClock.Instant? =
            waiting & MYSQL_WAIT_TIMEOUT != 0
            ? .now + .milliseconds(Int(mysql_get_timeout_value_ms(mysql))) : nil
        let ours = budget.earliest
        let check = budget.livenessCheckAfter.map { heard + $0 }
        let until = [ours, libraryTimeout, check].compactMap { $0 }.min()
        var ready: Int32
        do throws(SocketReactor.WaitError) {
            if waiting & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE) != 0 {
                let writable = waiting & MYSQL_WAIT_WRITE != 0
                try await SocketReactor.shared.wait(
                    for: Int32(mysql_get_socket(mysql)), writable ? .writable : .readable, until: until,
                    cancellable: budget.cancelGrace == .zero)
                ready = writable ? MYSQL_WAIT_WRITE : MYSQL_WAIT_READ
            } else {
                try? await Task.sleep(until: until ?? .now, clock: .continuous)
                if let ours, ours <= .now { throw SocketReactor.WaitError.timedOut }
                ready = MYSQL_WAIT_TIMEOUT
            }
        } catch {
            if error == .timedOut, let check, check == until, ours.map({ check < $0 }) ?? true,
                libraryTimeout.map({ check < $0 }) ?? true
            {
                // Silent for the interval: only slow if the server still answers a new connection.
                if await ServerLiveness.answers(peerOf: Int32(mysql_get_socket(mysql)), hello: []) {
                    heard = .now
                    continue
                }
                abandon(mysql, resume: resume)
                throw .serverSilent
            }
            if error == .timedOut, let libraryTimeout, ours.map({ libraryTimeout < $0 }) ?? true {
                ready = MYSQL_WAIT_TIMEOUT
            } else if error == .timedOut, budget.softDeadlinePassed {
                continue  // the task's deadline: stop the statement at the top of the loop, and wait on
            } else {
                abandon(mysql, resume: resume)
                let cancelled = error == .cancelled || budget.cancelDeadline.map { $0 <= .now } == true
                throw cancelled ? .cancelled : .deadline
            }
        }
        heard = .now
        waiting = resume(ready)
    }
}

/// Ends a call in flight: shuts the socket down and resumes the call until
/// it gives up on the dead socket (bounded; a call that never gives up is left).
private func abandon(_ mysql: UnsafeMutablePointer<MYSQL>, resume: (Int32) -> Int32) {
    shutdown(Int32(mysql_get_socket(mysql)), Int32(SHUT_RDWR))
    var waiting: Int32 = 1
    var rounds = 0
    while waiting != 0, rounds < 1000 {
        let ready =
            waiting & MYSQL_WAIT_TIMEOUT != 0 && waiting & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE) == 0
            ? MYSQL_WAIT_TIMEOUT : waiting & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE)
        waiting = resume(ready)
        rounds += 1
    }
}
