import XCTest

@testable import SioCluster

final class ClusterConfigurationTests: XCTestCase {
    func testURLsAreRead() throws {
        let plain = try ClusterConfiguration(url: "postgres://sio@127.0.0.1/sio")
        XCTAssertEqual([plain.user, plain.host, plain.database, plain.channel], ["sio", "127.0.0.1", "sio", "sio_cluster"])
        XCTAssertEqual(plain.port, 5432)
        XCTAssertNil(plain.password)
        let full = try ClusterConfiguration(url: "postgresql://u:p%40ss@db.example:6543/app?channel=chat_1&host=/run/pg")
        XCTAssertEqual([full.user, full.password, full.host, full.database, full.channel], ["u", "p@ss", "db.example", "app", "chat_1"])
        XCTAssertEqual(full.port, 6543)
        XCTAssertEqual(full.unixSocketPath, "/run/pg/.s.PGSQL.6543")
        XCTAssertEqual(full.payloadTable, "chat_1_payloads")
    }

    func testBadURLsAreRefused() {
        for url in ["", "mysql://u@h/d", "postgres://h/d", "postgres://u@h", "postgres://u@h/", "postgres://u@h/d?channel=",
                    "postgres://u@h/d?channel=Upper", "postgres://u@h/d?channel=a;drop", "postgres://u@h/d?x=1",
                    "postgres://u@h/d?channel=" + String(repeating: "a", count: 41)] {
            XCTAssertThrowsError(try ClusterConfiguration(url: url), url)
        }
    }
}
