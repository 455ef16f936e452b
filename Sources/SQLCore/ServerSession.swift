import ConnectionKit
import Foundation
import Synchronization

/// What every connection to a database server shares, whatever its C client:
/// one statement at a time (a gate that queues callers in order), the
/// open / broken / closed status, the transaction status the C client reported
/// after the last statement, closing once after the running statement, and
/// scrubbing the DSN's password from every message.
///
/// `PostgresConnection` and `MariaDBConnection` stand on it; a driver for
/// another server would too. The C handle itself stays with the backend: it
/// is used only inside ``exclusive(cancellable:onCancel:isCancelConfirmation:_:)`` and ``close(_:)``.
package final class ServerSession: Sendable {
    private enum Status: Sendable { case open, broken, closed }

    /// The backend's name in errors (`postgres`, `mariadb`).
    package let backend: String
    private let gate = AsyncLock()
    private let status = Locked(Status.open)
    private let transaction = Atomic<UInt8>(SQLTransactionStatus.idle.rawValue)
    /// A cancel request went out during the statement under way (see ``noteCancelRequested()``).
    private let cancelRequested = Atomic<Bool>(false)
    private let password: String?

    /// A session for `backend`; `password` is the DSN's, kept only to be scrubbed from messages.
    package init(backend: String, password: String?) {
        self.backend = backend
        self.password = password.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `false` once closed or after a connection-class error (reads only the
    /// locked status, never the C handle, which a running statement may be changing).
    package var isValid: Bool { status.withLock { $0 == .open } }

    /// What the backend last reported with ``recordTransactionStatus(_:)``;
    /// ``SQLTransactionStatus/unknown`` once broken or closed.
    package var transactionStatus: SQLTransactionStatus {
        guard isValid else { return .unknown }
        return SQLTransactionStatus(rawValue: transaction.load(ordering: .acquiring)) ?? .unknown
    }

    /// Keeps what the C client reports after a statement (call it inside
    /// ``exclusive(cancellable:onCancel:isCancelConfirmation:_:)``, where the handle may be read).
    package func recordTransactionStatus(_ status: SQLTransactionStatus) {
        transaction.store(status.rawValue, ordering: .releasing)
    }

    /// Whether ``close(_:)`` has run (or is running).
    package var isClosed: Bool { status.withLock { $0 == .closed } }

    /// Marks an open session broken: it is no longer ``isValid``, and its pool closes it.
    package func markBroken() {
        status.withLock { if $0 == .open { $0 = .broken } }
    }

    /// Says that a cancel request for the running statement is on its way to the server (a
    /// `PQcancel`, a `KILL QUERY`). Such a request may arrive after the statement ended, and
    /// would then stop the next one, whoever runs it: unless the statement ends with the
    /// cancel's own error (`isCancelConfirmation` of ``exclusive(cancellable:onCancel:isCancelConfirmation:_:)``),
    /// the session is marked broken, and its pool closes it. Returns `false` when one is already
    /// on its way for this statement: send no second one (one error could answer only one of them).
    package func noteCancelRequested() -> Bool {
        !cancelRequested.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// Runs `body` holding the connection: waits its turn (giving up when the task
    /// is cancelled first, if `cancellable`), fails fast once closed, calls `onCancel`
    /// (the backend's way to stop the server's work) when the task is cancelled
    /// while `body` runs, marks the session broken on a connection-class error, or
    /// when a cancel request went out (``noteCancelRequested()``) and the statement did not
    /// end with the error it gives (`isCancelConfirmation`), and scrubs the password from any
    /// error thrown.
    package func exclusive<T>(
        cancellable: Bool, onCancel: (@Sendable () -> Void)? = nil,
        isCancelConfirmation: (SQLError) -> Bool = { $0.code == .cancelled },
        _ body: () async throws(SQLError) -> T
    ) async throws(SQLError) -> T {
        guard await gate.lock(cancellable: cancellable) else {
            throw SQLError(.cancelled, message: "cancelled while waiting for the connection", backend: backend)
        }
        defer { gate.unlock() }
        guard status.withLock({ $0 }) != .closed else { throw SQLError(.closed, message: "the connection is closed", backend: backend) }
        if cancellable, SQLDeadline.hasPassed {
            throw SQLError(.timeout, kind: .statement, message: "the deadline passed before the statement was sent", backend: backend)
        }
        let outcome: Result<T, SQLError>
        if let onCancel {
            outcome = await withTaskCancellationHandler {
                do throws(SQLError) { return .success(try await body()) } catch { return .failure(error) }
            } onCancel: {
                onCancel()
            }
        } else {
            do throws(SQLError) { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        }
        if cancelRequested.exchange(false, ordering: .acquiringAndReleasing) {
            // The cancel may still be on its way: only its own error proves it was spent here.
            let confirmed = if case .failure(let error) = outcome { isCancelConfirmation(error) } else { false }
            if !confirmed { markBroken() }
        }
        do {
            return try outcome.get()
        } catch {
            if error.isConnectionError { markBroken() }
            throw redacted(SQLDeadline.relabel(error))
        }
    }

    /// Closes once: waits for the running statement, marks the session closed,
    /// then runs `finish` (the C client's close) if it was not closed before.
    package func close(_ finish: () async -> Void) async {
        guard await gate.lock(cancellable: false) else { return }
        defer { gate.unlock() }
        let wasOpen = status.withLock { s -> Bool in
            defer { s = .closed }
            return s != .closed
        }
        if wasOpen { await finish() }
    }

    /// `error` with the DSN's password replaced by `***` in its message and detail.
    package func redacted(_ error: SQLError) -> SQLError { error.redacting(password: password) }
}

extension SQLError {
    /// The error with `password` replaced by `***` in its message and detail
    /// (a C library may echo a DSN, or a server a statement that held it).
    /// A password shorter than ``wholeWordBelow`` characters is replaced only
    /// where it stands alone (not inside a longer word), so that a short one
    /// does not turn every message into asterisks.
    package func redacting(password: String?) -> SQLError {
        guard let password, !password.isEmpty,
            message.contains(password) || (detail?.contains(password) ?? false)
        else { return self }
        var copy = self
        copy.message = Self.scrub(copy.message, password)
        copy.detail = copy.detail.map { Self.scrub($0, password) }
        return copy
    }

    /// Passwords shorter than this are replaced only where they stand alone.
    static let wholeWordBelow = 8

    private static func scrub(_ text: String, _ password: String) -> String {
        guard password.count < wholeWordBelow else { return text.replacingOccurrences(of: password, with: "***") }
        func isWordCharacter(_ character: Character?) -> Bool { character.map { $0.isLetter || $0.isNumber } ?? false }
        var result = ""
        var rest = text[...]
        while let range = rest.range(of: password) {
            let before = range.lowerBound > rest.startIndex ? rest[rest.index(before: range.lowerBound)] : result.last
            let after = range.upperBound < rest.endIndex ? rest[range.upperBound] : nil
            result += rest[..<range.lowerBound]
            let standsAlone =
                !(isWordCharacter(before) && isWordCharacter(password.first))
                && !(isWordCharacter(after) && isWordCharacter(password.last))
            result += standsAlone ? "***" : rest[range]
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
