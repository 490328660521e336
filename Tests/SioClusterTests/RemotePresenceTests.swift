import SocketIOServer
import XCTest

@testable import SioCluster

final class RemotePresenceTests: XCTestCase {
    func testChangesBuildMembersCountsAndSockets() {
        var presence = RemotePresence()
        XCTAssertTrue(presence.isAlone)
        XCTAssertTrue(presence.heard("b", at: 1))
        XCTAssertFalse(presence.heard("b", at: 2))
        presence.apply(.connected(namespace: "/", socket: "s1"), from: "b")
        presence.apply(.joined(namespace: "/", socket: "s1", channel: "room"), from: "b")
        presence.apply(.value(namespace: "/", socket: "s1", "ann"), from: "b")
        presence.apply(.joined(namespace: "/", socket: "s2", channel: "room"), from: "b")
        presence.apply(.joined(namespace: "/other", socket: "s3", channel: "room"), from: "b")
        // From a node never heard: ignored.
        presence.apply(.joined(namespace: "/", socket: "x", channel: "room"), from: "zzz")
        XCTAssertEqual(Set(presence.members(namespace: "/", channel: "room").map { "\($0.id)=\($0.value ?? "-")@\($0.node!)" }),
                       ["s1=ann@b", "s2=-@b"])
        XCTAssertEqual(presence.channelCounts(namespace: "/"), ["room": 2])
        XCTAssertEqual(presence.members(namespace: "/", channel: nil).count, 2)
        XCTAssertTrue(presence.hasSocket("s3", namespace: "/other"))
        XCTAssertFalse(presence.hasSocket("s3", namespace: "/"))
        presence.apply(.left(namespace: "/", socket: "s2", channel: "room"), from: "b")
        presence.apply(.disconnected(namespace: "/", socket: "s1"), from: "b")
        XCTAssertEqual(presence.channelCounts(namespace: "/"), [:])
        XCTAssertEqual(presence.members(namespace: "/", channel: nil).map(\.id), ["s2"])
    }

    func testAwaySocketsAreFoundByPrivateIdUntilTheyAreBackOrGone() {
        var presence = RemotePresence()
        presence.heard("b", at: 1)
        presence.apply(.connected(namespace: "/", socket: "s1"), from: "b")
        presence.apply(.joined(namespace: "/", socket: "s1", channel: "room"), from: "b")
        XCTAssertNil(presence.awaySocket(pid: "p1"))
        presence.apply(.away(namespace: "/", socket: "s1", pid: "p1"), from: "b")
        XCTAssertEqual(presence.awaySocket(pid: "p1"), AwaySocket(node: "b", namespace: "/", id: "s1", channels: ["room"]))
        // Back: no longer found.
        presence.apply(.away(namespace: "/", socket: "s1", pid: nil), from: "b")
        XCTAssertNil(presence.awaySocket(pid: "p1"))
        // Away again, then gone.
        presence.apply(.away(namespace: "/", socket: "s1", pid: "p2"), from: "b")
        presence.apply(.disconnected(namespace: "/", socket: "s1"), from: "b")
        XCTAssertNil(presence.awaySocket(pid: "p2"))
        // Away for a socket never known: nothing.
        presence.apply(.away(namespace: "/", socket: "ghost", pid: "p3"), from: "b")
        XCTAssertNil(presence.awaySocket(pid: "p3"))
        // From a snapshot; forgotten with the snapshot after it and with the node.
        presence.replace(NamespaceMembers(namespace: "/", members: [.init(id: "s4", channels: ["a"], value: nil, pid: "p4")]), from: "b")
        XCTAssertEqual(presence.awaySocket(pid: "p4")?.id, "s4")
        presence.replace(NamespaceMembers(namespace: "/", members: [.init(id: "s4", channels: ["a"], value: nil)]), from: "b")
        XCTAssertNil(presence.awaySocket(pid: "p4"))
        presence.apply(.away(namespace: "/", socket: "s4", pid: "p5"), from: "b")
        presence.forget("b")
        XCTAssertNil(presence.awaySocket(pid: "p5"))
    }

    func testASnapshotReplacesItsNamespaceOnly() {
        var presence = RemotePresence()
        presence.heard("b", at: 1)
        presence.apply(.joined(namespace: "/", socket: "old", channel: "room"), from: "b")
        presence.apply(.joined(namespace: "/x", socket: "kept", channel: "room"), from: "b")
        presence.replace(NamespaceMembers(namespace: "/", members: [.init(id: "new", channels: ["room", "b"], value: "v")]), from: "b")
        XCTAssertEqual(presence.members(namespace: "/", channel: "room").map(\.id), ["new"])
        XCTAssertEqual(presence.members(namespace: "/x", channel: "room").map(\.id), ["kept"])
        presence.clear("b")
        XCTAssertEqual(presence.socketCount, 0)
        XCTAssertFalse(presence.isAlone)
    }

    func testSilentNodesExpireAndByeForgets() {
        var presence = RemotePresence()
        presence.heard("old", at: 10)
        presence.heard("new", at: 50)
        presence.heard("gone", at: 50)
        presence.apply(.connected(namespace: "/", socket: "s"), from: "old")
        XCTAssertEqual(presence.expire(notHeardSince: 20), ["old"])
        XCTAssertFalse(presence.hasSocket("s", namespace: "/"))
        presence.forget("gone")
        XCTAssertEqual(presence.nodeIDs, ["new"])
    }
}
