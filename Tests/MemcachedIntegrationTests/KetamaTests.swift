import Foundation
import Memcached
import TestServers
import Testing

/// A small C program that asks libmemcached itself where keys live, with
/// `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`: arguments are `host:port:weight`
/// servers, keys come one per line on standard input, and each answer is the
/// server's index. Built by the test with the system's C compiler.
private let libmemcachedHelper = #"""
    #include <libmemcached/memcached.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>

    int main(int argc, char **argv) {
        memcached_st *memc = memcached_create(NULL);
        if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) != MEMCACHED_SUCCESS) return 2;
        for (int i = 1; i < argc; i++) {
            char host[256]; unsigned port, weight;
            if (sscanf(argv[i], "%255[^:]:%u:%u", host, &port, &weight) != 3) return 3;
            if (memcached_server_add_with_weight(memc, host, (in_port_t)port, weight) != MEMCACHED_SUCCESS) return 4;
        }
        char line[1024];
        while (fgets(line, sizeof line, stdin)) {
            size_t length = strcspn(line, "\n");
            printf("%u\n", memcached_generate_hash(memc, line, length));
        }
        memcached_free(memc);
        return 0;
    }
    """#

/// Builds the helper once per test process.
private let helper = StartedOnce<String> {
    let folder = try await Commands.makeFolder("clustersql-ketama", owner: nil)
    try libmemcachedHelper.write(toFile: folder + "/ketama.c", atomically: true, encoding: .utf8)
    try await Commands.run("/usr/bin/cc", ["-O1", "-o", folder + "/ketama", folder + "/ketama.c", "-lmemcached"])
    return folder + "/ketama"
}

/// libmemcached's choice for every key, through the helper.
private func libmemcachedChoices(_ servers: [Ketama.Server], keys: [String]) async throws -> [Int] {
    let binary = try await helper.value()
    let input = FileManager.default.temporaryDirectory.appendingPathComponent("ketama-keys-\(UUID().uuidString)").path
    try keys.joined(separator: "\n").appending("\n").write(toFile: input, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: input) }
    let arguments = servers.map { "'\($0.host):\($0.port):\($0.weight)'" }.joined(separator: " ")
    let output = try await Commands.run("/bin/sh", ["-c", "'\(binary)' \(arguments) < '\(input)'"]).output
    return output.split(separator: "\n").compactMap { Int($0) }
}

@Suite("Ketama: libmemcached's weighted consistent hashing")
struct KetamaTests {
    static let keys = (0..<5000).map { "user:\($0):profile" } + ["a", "", "日本語", "key with spaces?", String(repeating: "x", count: 250)]

    @Test(
        "the same server as libmemcached for thousands of keys: 2 and 3 servers, default port or not, with weights",
        arguments: [
            [Ketama.Server(host: "127.0.0.1", port: 11211), Ketama.Server(host: "127.0.0.1", port: 11212)],
            [Ketama.Server(host: "10.0.0.1"), Ketama.Server(host: "10.0.0.2"), Ketama.Server(host: "cache-3.example", port: 22122)],
            [
                Ketama.Server(host: "10.0.0.1", weight: 1), Ketama.Server(host: "10.0.0.2", weight: 3),
                Ketama.Server(host: "10.0.0.3", port: 11300, weight: 2),
            ],
        ])
    func matchesLibmemcached(servers: [Ketama.Server]) async throws {
        let ring = Ketama(servers: servers)
        let keys = Self.keys.filter { !$0.isEmpty }  // libmemcached refuses an empty key
        let theirs = try await libmemcachedChoices(servers, keys: keys)
        try #require(theirs.count == keys.count)
        let ours = keys.map { ring.server(for: Array($0.utf8))! }
        let differing = zip(ours, theirs).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(keys.count) keys placed differently from libmemcached")
    }

    @Test("equal weights spread keys evenly; adding a server moves only about 1/N of them")
    func spreadAndStability() {
        let three = Ketama(servers: (1...3).map { Ketama.Server(host: "10.0.0.\($0)") })
        #expect(three.pointCount == 480)
        let keys = (0..<30_000).map { Array("k\($0)".utf8) }
        let before = keys.map { three.server(for: $0)! }
        for server in 0..<3 {
            let share = Double(before.filter { $0 == server }.count) / Double(keys.count)
            #expect(share > 0.25 && share < 0.42, "server \(server) holds \(share) of the keys")
        }
        let four = Ketama(servers: (1...4).map { Ketama.Server(host: "10.0.0.\($0)") })
        let after = keys.map { four.server(for: $0)! }
        let moved = zip(before, after).filter { $0 != $1 }
        #expect(moved.allSatisfy { $0.1 == 3 }, "keys move only to the new server")
        let movedShare = Double(moved.count) / Double(keys.count)
        #expect(movedShare > 0.15 && movedShare < 0.35, "\(movedShare) of the keys moved")
    }

    @Test("no server: no answer; one server: every key")
    func degenerate() {
        #expect(Ketama(servers: []).server(for: Array("k".utf8)) == nil)
        let one = Ketama(servers: [Ketama.Server(host: "h")])
        #expect((0..<100).allSatisfy { one.server(for: Array("k\($0)".utf8)) == 0 })
    }
}
