#if os(Linux)
    import CEpoll
    import Glibc

    /// `ReadinessPoller` on one epoll set, with an `eventfd` to wake it. An arm is one
    /// `epoll_ctl` made by the waiting thread: a thread already in `epoll_wait` sees it.
    final class EpollReadinessPoller: ReadinessPoller {
        private let epoll: Int32
        private let wakeFD: Int32
        let name = "epoll"

        init() {
            epoll = clustersql_epoll_create()
            wakeFD = clustersql_eventfd_create()
            precondition(epoll >= 0 && wakeFD >= 0, "epoll_create1/eventfd failed: errno \(errno)")
            precondition(clustersql_epoll_watch(epoll, wakeFD, readinessWakeTag) == 0, "epoll_ctl failed: errno \(errno)")
        }

        func arm(_ fd: Int32, _ direction: SocketReactor.Direction, tag: UInt64) -> Bool {
            let events: Int32 =
                switch direction {
                case .readable: 0
                case .writable: 1
                case .readableOrWritable: 2
                }
            return clustersql_epoll_arm(epoll, fd, events, tag) == 0
        }

        func wait(into tags: UnsafeMutableBufferPointer<UInt64>, timeout: Int32) -> Int {
            Int(max(0, clustersql_epoll_wait(epoll, tags.baseAddress, Int32(tags.count), timeout)))
        }

        func wake() { clustersql_eventfd_signal(wakeFD) }

        func drainWake() { clustersql_eventfd_drain(wakeFD) }
    }
#endif
