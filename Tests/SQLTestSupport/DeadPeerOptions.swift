#if canImport(Glibc)
    import Glibc

    /// The dead-peer settings a TCP socket carries, read back from the kernel: what a
    /// backend's defaults or its DSN actually put on the connection's socket.
    public struct DeadPeerOptions: Equatable, Sendable, CustomStringConvertible {
        /// `SO_KEEPALIVE`.
        public var keepalive: Bool
        /// `TCP_KEEPIDLE`: seconds of silence before the first probe.
        public var idleSeconds: Int32
        /// `TCP_KEEPINTVL`: seconds between probes.
        public var intervalSeconds: Int32
        /// `TCP_KEEPCNT`: unanswered probes before the connection is dropped.
        public var probes: Int32
        /// `TCP_USER_TIMEOUT`: milliseconds sent data may stay unacknowledged (0: the system's).
        public var userTimeoutMilliseconds: UInt32

        /// The settings given.
        public init(keepalive: Bool, idleSeconds: Int32, intervalSeconds: Int32, probes: Int32, userTimeoutMilliseconds: UInt32) {
            self.keepalive = keepalive
            self.idleSeconds = idleSeconds
            self.intervalSeconds = intervalSeconds
            self.probes = probes
            self.userTimeoutMilliseconds = userTimeoutMilliseconds
        }

        /// The settings of TCP socket `fd`; `nil` when they cannot be read (not a TCP socket).
        public init?(of fd: Int32) {
            func read<Value: FixedWidthInteger>(_ level: Int32, _ option: Int32, as type: Value.Type) -> Value? {
                var value: Value = 0
                var length = socklen_t(MemoryLayout<Value>.size)
                return getsockopt(fd, level, option, &value, &length) == 0 ? value : nil
            }
            let tcp = Int32(IPPROTO_TCP)
            guard let keepalive = read(SOL_SOCKET, SO_KEEPALIVE, as: Int32.self),
                let idle = read(tcp, TCP_KEEPIDLE, as: Int32.self),
                let interval = read(tcp, TCP_KEEPINTVL, as: Int32.self),
                let probes = read(tcp, TCP_KEEPCNT, as: Int32.self),
                let userTimeout = read(tcp, TCP_USER_TIMEOUT, as: UInt32.self)
            else { return nil }
            self.init(
                keepalive: keepalive != 0, idleSeconds: idle, intervalSeconds: interval, probes: probes,
                userTimeoutMilliseconds: userTimeout)
        }

        /// ClusterSQL's defaults on PostgreSQL and MariaDB: a probe after 10 s idle, every 5 s, 3
        /// unanswered; data unacknowledged for 30 s.
        public static let clusterSQLDefaults = DeadPeerOptions(
            keepalive: true, idleSeconds: 10, intervalSeconds: 5, probes: 3, userTimeoutMilliseconds: 30_000)

        /// `keepalive on, idle 10 s, interval 5 s, 3 probes, user timeout 30000 ms`.
        public var description: String {
            "keepalive \(keepalive ? "on" : "off"), idle \(idleSeconds) s, interval \(intervalSeconds) s, \(probes) probes, user timeout \(userTimeoutMilliseconds) ms"
        }
    }
#endif
