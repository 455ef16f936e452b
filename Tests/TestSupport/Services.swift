import ServiceLifecycle

/// Runs `body` while the services' `run()` (a cluster's, a pool's) are active, then stops them.
public func whileRunning<T: Sendable>(_ services: any Service..., body: @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        for service in services {
            group.addTask {
                try await service.run()
                return nil
            }
        }
        let result = try await body()
        group.cancelAll()
        return result
    }
}
