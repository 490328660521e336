import NIOCore

/// The events sent to a runner and not answered yet, by id.
///
/// Ids are handed out in order and nearly always answered in order, so a ring indexed by id
/// holds them without hashing (the dictionary it replaces cost a hash insert and removal per
/// event). An event answered much later — deferred in the runner — moves aside into a
/// dictionary once the ring passes `window`, so one slow event never makes the ring grow with
/// everything sent after it.
struct InFlightTable<Element> {
    static var window: Int { 4096 }

    private var ring = CircularBuffer<Element?>()
    /// The id of the ring's first slot.
    private var base: UInt64 = 0
    private var aside: [UInt64: Element] = [:]

    var isEmpty: Bool { ring.isEmpty && aside.isEmpty }

    /// `id` must be above every id inserted before.
    mutating func insert(_ element: Element, id: UInt64) {
        if ring.isEmpty { base = id }
        precondition(id >= base + UInt64(ring.count), "in-flight ids go up")
        while base + UInt64(ring.count) < id { ring.append(nil) }
        ring.append(element)
        while ring.count > Self.window {
            if let first = ring.removeFirst() { aside[base] = first }
            base += 1
        }
    }

    subscript(id: UInt64) -> Element? {
        if id < base { return aside[id] }
        guard let offset = Int(exactly: id - base), offset < ring.count else { return nil }
        return ring[ring.index(ring.startIndex, offsetBy: offset)]
    }

    @discardableResult
    mutating func remove(_ id: UInt64) -> Element? {
        if id < base { return aside.removeValue(forKey: id) }
        guard let offset = Int(exactly: id - base), offset < ring.count else { return nil }
        let index = ring.index(ring.startIndex, offsetBy: offset)
        let element = ring[index]
        ring[index] = nil
        while let first = ring.first, first == nil {
            ring.removeFirst()
            base += 1
        }
        return element
    }

    /// Every element with its id, the ones set aside first (they are the oldest).
    var all: [(id: UInt64, element: Element)] {
        var result = aside.sorted { $0.key < $1.key }.map { (id: $0.key, element: $0.value) }
        for (offset, element) in ring.enumerated() {
            if let element { result.append((base + UInt64(offset), element)) }
        }
        return result
    }

    /// The ids of the elements `predicate` picks, without copying the others.
    func ids(where predicate: (Element) -> Bool) -> [UInt64] {
        var ids = aside.filter { predicate($0.value) }.map(\.key)
        for (offset, element) in ring.enumerated() {
            if let element, predicate(element) { ids.append(base + UInt64(offset)) }
        }
        return ids
    }

    mutating func removeAll() {
        ring.removeAll(keepingCapacity: true)
        aside = [:]
    }
}
