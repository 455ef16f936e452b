import CLibPQ
import Logging

/// Receives the server's notices (`RAISE NOTICE`, warnings) and logs them at
/// debug level: libpq would otherwise print them to stderr.
final class NoticeSink: Sendable {
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Installs the receiver; the sink must outlive the connection (the connection keeps it).
    func install(on conn: OpaquePointer) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        PQsetNoticeReceiver(
            conn,
            { context, result in
                guard let context, let result else { return }
                let sink = Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue()
                let message = String(cString: PQresultErrorMessage(result)).trimmingNewlines()
                let state = PQresultErrorField(result, Int32(Character("C").asciiValue!)).map { String(cString: $0) } ?? ""
                sink.logger.debug("postgres notice", metadata: ["sqlstate": "\(state)", "notice": "\(message)"])
            }, context)
    }
}
