import CZlib
public import Engine
import Foundation

/// Writes quotes as a Bybit order-book archive (docs/FEATURES.md, "Bybit's order-book archive"): a zip holding one
/// member of JSON lines, a `snapshot` of the first quote and then one `delta` per change of the best levels (the old
/// level deleted with size 0, the new one set), so that reading it back gives the same quotes. For `simulate
/// --book-archive`, to try and measure the archive path without Bybit's files. Every `snapshotEvery` messages a new
/// snapshot with `u` = 1 is written, as after a restart of the exchange's book service.
public struct OrderBookArchiveWriter {
    private let zip: ZipFileWriter
    private let instrument: Instrument
    private let topic: String
    private var last: QuoteEvent?
    private var updateId: Int64 = 0
    private var sequence: Int64 = 0
    private var line: [UInt8] = []
    private let snapshotEvery: Int
    private var sinceSnapshot = 0
    public private(set) var messages = 0

    /// Creates (or truncates) `path`; the member is named as in Bybit's archives (`2026-01-01_BTCUSDT_ob500.data`).
    public init(path: String, memberName: String, instrument: Instrument, snapshotEvery: Int = 100_000)
        throws(DataFileError)
    {
        zip = try ZipFileWriter(path: path, memberName: memberName)
        self.instrument = instrument
        topic = "orderbook.500.\(instrument.symbol)"
        self.snapshotEvery = snapshotEvery
    }

    /// Writes the message that makes `q` the best levels (nothing when they are already `q`'s).
    public mutating func write(_ q: QuoteEvent) throws(DataFileError) {
        if let last, last.bidPrice == q.bidPrice, last.bidSize == q.bidSize, last.askPrice == q.askPrice,
            last.askSize == q.askSize
        {
            return
        }
        let snapshot = last == nil || sinceSnapshot >= snapshotEvery
        updateId = snapshot && last != nil ? 1 : updateId + 1
        sequence += 1
        sinceSnapshot = snapshot ? 0 : sinceSnapshot + 1
        line.removeAll(keepingCapacity: true)
        append("{\"topic\":\"\(topic)\",\"type\":\"\(snapshot ? "snapshot" : "delta")\",\"ts\":\(q.ts + 3),")
        append("\"data\":{\"s\":\"\(instrument.symbol)\",\"b\":[")
        var levels: [(Ticks, Lots)] = []
        if !snapshot, let last, last.bidPrice != q.bidPrice { levels.append((last.bidPrice, 0)) }
        levels.append((q.bidPrice, q.bidSize))
        appendLevels(levels)
        append("],\"a\":[")
        levels.removeAll()
        if !snapshot, let last, last.askPrice != q.askPrice { levels.append((last.askPrice, 0)) }
        levels.append((q.askPrice, q.askSize))
        appendLevels(levels)
        append("],\"u\":\(updateId),\"seq\":\(sequence)},\"cts\":\(q.ts)}\n")
        try zip.write(line)
        last = q
        messages += 1
    }

    /// Finishes the member and writes the zip's central directory.
    public mutating func close() throws(DataFileError) { try zip.close() }

    private mutating func append(_ s: String) { line.append(contentsOf: s.utf8) }

    private mutating func appendLevels(_ levels: [(Ticks, Lots)]) {
        for (i, (price, size)) in levels.enumerated() {
            if i > 0 { append(",") }
            append("[\"\(formatScaled(price * instrument.tick.mantissa, scale: instrument.tick.scale))\",")
            append("\"\(formatScaled(size * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale))\"]")
        }
    }
}

/// A zip file with one deflated member, written as a stream: the local header says its sizes follow the data (a data
/// descriptor), the central directory at the end states them. Members over 4 GiB are refused (no zip64 writing).
/// A class: zlib's stream state points back at its `z_stream`, which must not move.
final class ZipFileWriter {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private let name: [UInt8]
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var out = [UInt8](repeating: 0, count: 1 << 18)
    private var crc: UInt = crc32(0, nil, 0)
    private var size: UInt64 = 0
    private var compressed: UInt64 = 0
    private var closed = false

    init(path: String, memberName: String) throws(DataFileError) {
        guard let file = fopen(path, "wb") else { throw DataFileError(file: path, reason: "cannot be created") }
        self.file = file
        self.path = path
        name = Array(memberName.utf8)
        stream.initialize(to: z_stream())
        guard
            deflateInit2_(
                stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
                == Z_OK
        else { throw DataFileError(file: path, reason: "zlib could not start deflating") }
        // Local file header: version 2.0, flag 8 (sizes in a data descriptor), deflate, no time, CRC and sizes 0.
        var header: [UInt8] = []
        header += le32Bytes(0x0403_4B50) + le16Bytes(20) + le16Bytes(8) + le16Bytes(8) + le16Bytes(0) + le16Bytes(0x21)
        header += le32Bytes(0) + le32Bytes(0) + le32Bytes(0) + le16Bytes(UInt16(name.count)) + le16Bytes(0) + name
        try put(header)
    }

    deinit {
        if !closed { deflateEnd(stream) }
        stream.deallocate()
    }

    func write(_ bytes: [UInt8]) throws(DataFileError) {
        crc = bytes.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, UInt32($0.count)) }
        size += UInt64(bytes.count)
        guard size < 0xFFFF_FFFF else { throw DataFileError(file: path, reason: "over 4 GiB: zip64 is not written") }
        var input = bytes
        try input.withUnsafeMutableBufferPointer { (b) throws(DataFileError) in
            stream.pointee.next_in = b.baseAddress
            stream.pointee.avail_in = UInt32(b.count)
            try pump(Z_NO_FLUSH)
        }
    }

    func close() throws(DataFileError) {
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        try pump(Z_FINISH)
        deflateEnd(stream)
        closed = true
        let directoryOffset = UInt32(30 + name.count) + UInt32(compressed) + 16
        try put(
            le32Bytes(0x0807_4B50) + le32Bytes(UInt32(crc)) + le32Bytes(UInt32(compressed)) + le32Bytes(UInt32(size)))
        var directory: [UInt8] = []
        directory += le32Bytes(0x0201_4B50) + le16Bytes(20) + le16Bytes(20) + le16Bytes(8) + le16Bytes(8)
        directory += le16Bytes(0) + le16Bytes(0x21) + le32Bytes(UInt32(crc)) + le32Bytes(UInt32(compressed))
        directory += le32Bytes(UInt32(size)) + le16Bytes(UInt16(name.count)) + le16Bytes(0) + le16Bytes(0)
        directory += le16Bytes(0) + le16Bytes(0) + le32Bytes(0) + le32Bytes(0) + name
        let end =
            le32Bytes(0x0605_4B50) + le16Bytes(0) + le16Bytes(0) + le16Bytes(1) + le16Bytes(1)
            + le32Bytes(UInt32(directory.count)) + le32Bytes(directoryOffset) + le16Bytes(0)
        try put(directory + end)
        guard fclose(file) == 0 else { throw DataFileError(file: path, reason: "write failed (close)") }
    }

    private func pump(_ flush: Int32) throws(DataFileError) {
        while true {
            let (status, produced): (Int32, Int) = out.withUnsafeMutableBufferPointer { o in
                stream.pointee.next_out = o.baseAddress
                stream.pointee.avail_out = UInt32(o.count)
                let status = deflate(stream, flush)
                return (status, o.count - Int(stream.pointee.avail_out))
            }
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw DataFileError(file: path, reason: "zlib failed to deflate (error \(status))")
            }
            if produced > 0 {
                compressed += UInt64(produced)
                try put(Array(out[0..<produced]))
            }
            if flush == Z_FINISH ? status == Z_STREAM_END : stream.pointee.avail_in == 0 && produced < out.count {
                return
            }
        }
    }

    private func put(_ bytes: [UInt8]) throws(DataFileError) {
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else {
            throw DataFileError(file: path, reason: "write failed (disk full?)")
        }
    }
}

private func le16Bytes(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
private func le32Bytes(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
