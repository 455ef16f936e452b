import ConnectionKit
import Foundation

/// Host name lookups off the cooperative pool: `getaddrinfo` blocks (DNS, a
/// slow NSS module), so it runs on threads of its own (never the ones that
/// send cancellations), bounded by the caller's deadline and cancellation.
package enum HostResolver {
    /// Why a name could not be resolved.
    package struct Failure: Error, Sendable, Equatable {
        /// What went wrong.
        package enum Kind: Sendable, Equatable {
            /// The resolver answered that the name has no address (or failed).
            case unresolved
            /// The deadline passed before the resolver answered.
            case timedOut
            /// The task was cancelled before the resolver answered.
            case cancelled
        }

        /// The name that was looked up.
        package let host: String
        /// What went wrong.
        package let kind: Kind
        /// The resolver's own words (`gai_strerror`), or what ended the wait.
        package let reason: String
    }

    /// The threads lookups run on.
    static let threads = BlockingCallThreads(maxThreads: 4, name: "clustersql-resolver")

    /// Whether `host` is already a numeric IPv4 or IPv6 address (nothing to look up).
    package static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Whether `host` needs a lookup: a name, not a numeric address, and not
    /// `localhost`, which every system answers from its hosts file and whose
    /// addresses (`::1` before `127.0.0.1`, say) the C clients try in their own order.
    package static func needsLookup(_ host: String) -> Bool {
        !host.isEmpty && host.lowercased() != "localhost" && !isNumeric(host)
    }

    /// Every address of `host` for a TCP connection, as numeric text, in the
    /// resolver's order, without duplicates; a numeric `host` is returned as it is.
    package static func resolve(_ host: String, until deadline: ContinuousClock.Instant? = nil) async throws(Failure) -> [String] {
        if isNumeric(host) { return [host] }
        let race = Race<Result<[String], Failure>>()
        let timer = deadline.map { deadline in
            Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                if !Task.isCancelled {
                    race.finish(.failure(Failure(host: host, kind: .timedOut, reason: "no answer from the resolver in time")))
                }
            }
        }
        defer { timer?.cancel() }
        threads.submit { race.finish(lookUp(host)) }
        let result = await withTaskCancellationHandler {
            await race.value()
        } onCancel: {
            race.finish(.failure(Failure(host: host, kind: .cancelled, reason: "cancelled")))
        }
        return try result.get()
    }

    /// The first of several outcomes to arrive, handed to one waiter (whichever comes first, the waiter or the outcome).
    private final class Race<Outcome: Sendable>: Sendable {
        private enum State {
            case idle
            case waiting(UnsafeContinuation<Outcome, Never>)
            case finished(Outcome)
            case done
        }

        private let state = Locked<State>(.idle)

        /// Settles the race with `outcome`, unless it is settled already.
        func finish(_ outcome: Outcome) {
            let waiter = state.withLock { s -> UnsafeContinuation<Outcome, Never>? in
                switch s {
                case .idle:
                    s = .finished(outcome)
                    return nil
                case .waiting(let continuation):
                    s = .done
                    return continuation
                case .finished, .done:
                    return nil
                }
            }
            waiter?.resume(returning: outcome)
        }

        /// The outcome, once there is one.
        func value() async -> Outcome {
            await withUnsafeContinuation { continuation in
                let ready = state.withLock { s -> Outcome? in
                    if case .finished(let outcome) = s {
                        s = .done
                        return outcome
                    }
                    s = .waiting(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private static func lookUp(_ host: String) -> Result<[String], Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM  // an Int32 on Darwin
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, list != nil else {
            return .failure(Failure(host: host, kind: .unresolved, reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                let address = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                if !addresses.contains(address) { addresses.append(address) }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failure(Failure(host: host, kind: .unresolved, reason: "no numeric address")) }
        return .success(addresses)
    }
}
