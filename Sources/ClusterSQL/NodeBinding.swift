import ConnectionKit
import SQLCore

/// A connection to a node, with the node it belongs to.
struct NodeBinding: Sendable {
    let node: ClusterNode
    let connection: any SQLConnection
}

extension ClusterNode {
    /// One try to open a connection for `target`: through the node's breaker,
    /// timed, and with the role checked on the new connection when asked to,
    /// when the target needs one, or when it is not known yet. A cancelled try (the race was won
    /// elsewhere) is not a failure of the node.
    func attempt(for target: TargetRole, verifyingRole verify: Bool) async -> Result<any SQLConnection, SQLError> {
        await inFlight { () async -> Result<any SQLConnection, SQLError> in
            let started = clock.now
            let connection: any SQLConnection
            do throws(ManagedFailure<SQLError>) {
                connection = try await breaker.call { () async throws(SQLError) in try await driver.connect(to: dsn) }
            } catch {
                switch error {
                case .refused(let refusal):
                    return .failure(SQLError(.noEligibleNode, message: "ejected: \(refusal)", node: name, underlying: refusal))
                case .failed(let error) where error.code == .cancelled || Task.isCancelled || SQLDeadline.hasPassed:
                    recordStall(started.duration(to: clock.now))
                    return .failure(error.on(node: name))
                case .failed(let error):
                    recordFailure(error, countForHealth: false)  // the breaker counted it
                    return .failure(error.on(node: name))
                }
            }
            if verify || target.needsKnownRole || role == .unknown {
                do throws(SQLError) {
                    let detected = try await roleDetector.detect(connection)
                    setRole(detected)
                    guard target.accepts(detected) else {
                        await connection.close()
                        return .failure(
                            SQLError(
                                .roleMismatch, message: "the node is \(detected.rawValue); the open asks for \(target)", node: name))
                    }
                } catch {
                    await connection.close()
                    if error.isConnectionError, error.code != .cancelled { recordFailure(error) }
                    return .failure(error.on(node: name))
                }
            }
            recordConnect(started.duration(to: clock.now))
            guard let sessionSetup else { return .success(connection) }
            // A failing setup counts against no node (it is the caller's SQL, or the caller's deadline).
            do throws(SQLError) {
                return .success(try await sessionSetup.prepare(connection))
            } catch {
                return .failure(error.on(node: name))
            }
        }
    }
}
