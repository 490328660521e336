/// Objects with O(1) insertion and removal, kept in one array so that a broadcast takes its
/// recipients by sharing that array's storage (copy on write) rather than copying a thousand
/// references out of a dictionary.
struct IdentitySet<Element: AnyObject> {
    private(set) var members: ContiguousArray<Element> = []
    private var positions: [ObjectIdentifier: Int] = [:]

    var isEmpty: Bool { members.isEmpty }

    mutating func insert(_ element: Element) {
        let key = ObjectIdentifier(element)
        guard positions[key] == nil else { return }
        positions[key] = members.count
        members.append(element)
    }

    /// Moves the last member into the hole: order is not kept.
    mutating func remove(_ element: Element) {
        guard let position = positions.removeValue(forKey: ObjectIdentifier(element)) else { return }
        let last = members.removeLast()
        if position < members.count {
            members[position] = last
            positions[ObjectIdentifier(last)] = position
        }
    }
}

extension IdentitySet: Sendable where Element: Sendable {}
