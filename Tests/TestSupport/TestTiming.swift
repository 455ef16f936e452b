import Foundation

/// Wall-clock bounds in tests, stretched when the code runs slower than it ships:
/// under ThreadSanitizer (5–15× slower) or AddressSanitizer (about 2×).
///
/// `make test-tsan` and `make test-asan` set `CLUSTERSQL_TEST_TIME_SCALE`; a bound
/// that says "promptly" (a cancellation within 1 s, a read timeout within 3 s) still
/// catches a hang there, without failing because every instruction is instrumented.
public enum TestTiming {
    /// The factor from `CLUSTERSQL_TEST_TIME_SCALE`, 1 when it is not set or not a number ≥ 1.
    public static let scale: Double = {
        guard let text = ProcessInfo.processInfo.environment["CLUSTERSQL_TEST_TIME_SCALE"],
            let value = Double(text), value >= 1, value.isFinite
        else { return 1 }
        return value
    }()

    /// `duration` times ``scale``.
    public static func bound(_ duration: Duration) -> Duration { duration * scale }
}
