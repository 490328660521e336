/// Checks a plugin file's ELF structure against its size before the dynamic loader sees it.
///
/// `dlopen` trusts the file: it maps each loadable segment for the length its program header
/// claims, and touching a mapped page past the end of the file is SIGBUS, which ends the
/// process. A truncated build (a copy caught half-way, a partial download) is exactly that. So
/// every range the loader will read — program headers, loadable segments, the dynamic section
/// and the tables it points to — must lie inside the file, and every address inside a segment.
/// What this cannot see (a relocation aimed at nonsense, a corrupt hash table) is left to the
/// probe process (`PluginProbe`), whose death refuses the file.
enum ELFCheck {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private struct Segment {
        var offset: UInt64, fileSize: UInt64, address: UInt64, memorySize: UInt64
    }

    static func validate(_ bytes: [UInt8]) throws(Failure) {
        let size = UInt64(bytes.count)
        func fail(_ why: String) -> Failure { Failure(description: why) }
        func within(_ offset: UInt64, _ length: UInt64) -> Bool {
            let (end, overflow) = offset.addingReportingOverflow(length)
            return !overflow && end <= size
        }
        func read<T: FixedWidthInteger>(_ offset: UInt64, as: T.Type) -> T {
            bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Int(offset), as: T.self).littleEndian }
        }

        guard size >= 64 else { throw fail("not an ELF file (\(size) bytes)") }
        guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else { throw fail("not an ELF file") }
        guard bytes[4] == 2, bytes[5] == 1 else { throw fail("not a 64-bit little-endian ELF file") }
        guard read(16, as: UInt16.self) == 3 else { throw fail("not a shared object (ELF type \(read(16, as: UInt16.self)))") }
        #if arch(x86_64)
        let machine: UInt16 = 62
        #elseif arch(arm64)
        let machine: UInt16 = 183
        #else
        let machine = read(18, as: UInt16.self)
        #endif
        guard read(18, as: UInt16.self) == machine else { throw fail("built for another machine (ELF machine \(read(18, as: UInt16.self)))") }

        let phoff = read(32, as: UInt64.self), shoff = read(40, as: UInt64.self)
        let phentsize = UInt64(read(54, as: UInt16.self)), phnum = UInt64(read(56, as: UInt16.self))
        let shentsize = UInt64(read(58, as: UInt16.self)), shnum = UInt64(read(60, as: UInt16.self))
        guard phentsize == 56, phnum > 0 else { throw fail("invalid program header table") }
        guard within(phoff, phentsize * phnum) else {
            throw fail("truncated: the program headers end past byte \(size)")
        }
        if shoff != 0, !within(shoff, shentsize * shnum) {
            throw fail("truncated: the section headers end at byte \(shoff &+ shentsize &* shnum), the file has \(size)")
        }

        var segments: [Segment] = []
        var dynamic: (offset: UInt64, size: UInt64)?
        for index in 0..<phnum {
            let base = phoff + index * phentsize
            let type = read(base, as: UInt32.self)
            let offset = read(base + 8, as: UInt64.self), address = read(base + 16, as: UInt64.self)
            let fileSize = read(base + 32, as: UInt64.self), memorySize = read(base + 40, as: UInt64.self)
            let align = read(base + 48, as: UInt64.self)
            guard within(offset, fileSize) else {
                throw fail("truncated: segment \(index) ends at byte \(offset &+ fileSize), the file has \(size)")
            }
            switch type {
            case 1:  // PT_LOAD
                guard fileSize <= memorySize else { throw fail("segment \(index) is larger in the file than in memory") }
                guard align == 0 || (align & (align - 1) == 0 && (address &- offset) % align == 0) else {
                    throw fail("segment \(index) is misaligned")
                }
                guard !address.addingReportingOverflow(memorySize).overflow else { throw fail("segment \(index) wraps the address space") }
                segments.append(Segment(offset: offset, fileSize: fileSize, address: address, memorySize: memorySize))
            case 2:  // PT_DYNAMIC
                dynamic = (offset, fileSize)
            default:
                break
            }
        }
        guard !segments.isEmpty else { throw fail("no loadable segment") }
        guard let dynamic else { throw fail("no dynamic section") }

        /// Whether `length` bytes at address `address` come from the file (not just zero-filled).
        func fileBacked(_ address: UInt64, _ length: UInt64) -> Bool {
            segments.contains { segment in
                let (end, overflow) = address.addingReportingOverflow(length)
                return !overflow && address >= segment.address && end <= segment.address + segment.fileSize
            }
        }

        var values: [UInt64: UInt64] = [:]
        var needed: [UInt64] = []
        var entry = dynamic.offset
        while entry + 16 <= dynamic.offset + dynamic.size {
            let tag = read(entry, as: UInt64.self), value = read(entry + 8, as: UInt64.self)
            if tag == 0 { break }
            if tag == 1 { needed.append(value) } else { values[tag] = value }
            entry += 16
        }
        // Tables the loader reads, as (address tag, size tag or fixed size, name).
        let tables: [(UInt64, UInt64?, String)] = [
            (5, 10, "string table"), (7, 8, "relocations"), (23, 2, "PLT relocations"), (36, 35, "relative relocations"),
            (25, 27, "init array"), (26, 28, "fini array"), (6, nil, "symbol table"), (4, nil, "hash table"),
            (0x6fff_fef5, nil, "GNU hash table"), (0x6fff_fff0, nil, "symbol versions"),
            (0x6fff_fffc, nil, "version definitions"), (0x6fff_fffe, nil, "version needs"),
        ]
        for (addressTag, sizeTag, name) in tables {
            guard let address = values[addressTag] else { continue }
            let length = sizeTag.map { values[$0] ?? 0 } ?? 1
            guard fileBacked(address, max(length, 1)) else {
                throw fail("the \(name) lies outside the file's segments (truncated or corrupt)")
            }
        }
        guard values[5] != nil, let strings = values[10] else { throw fail("no dynamic string table") }
        for offset in needed where offset >= strings {
            throw fail("a needed library's name lies outside the string table")
        }
    }
}
