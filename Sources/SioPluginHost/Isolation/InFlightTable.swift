import NIOCore

/// The events sent to a runner and not answered yet, by id.
///
/// Ids are handed out in order and answered in order — the runner takes its inbox first in,
/// first out — except for events it parks (deferred by the plugin, or held behind their
/// socket's deferred one), which it says so of (`park`). So a ring indexed by id holds them
/// without hashing (the dictionary it replaces cost a hash insert and removal per event), and
/// parked events move aside into a dictionary, so one slow event never makes the ring grow
/// with everything sent after it. Past `window` (a runner that answers nothing, held back by
/// each client's backlog limit) the oldest move aside too.
struct InFlightTable<Element> {
    let window: Int

    init(window: Int = 1 << 20) {
        self.window = window
    }

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
        while ring.count > window {
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

    /// The event will be answered out of order: it leaves the ring.
    mutating func park(_ id: UInt64) {
        guard id >= base, let element = remove(id) else { return }
        aside[id] = element
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
