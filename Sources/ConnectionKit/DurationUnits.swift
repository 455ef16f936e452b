extension Duration {
    /// The duration in seconds, as a double.
    @inlinable
    package var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in milliseconds, as a double (a latency in statistics).
    @inlinable
    package var inMilliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }

    /// The whole milliseconds in the duration, the rest dropped (what a server or a socket
    /// option takes: `PX`, `WAIT`, `TCP_USER_TIMEOUT`, SQLite's busy timeout).
    @inlinable
    package var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
