import CZlib
public import Engine
import Foundation

/// Writes trades and quotes as CSV in the formats the readers take (`ts` in milliseconds):
/// `ts,price,size,side` and `ts,bid_px,bid_sz,ask_px,ask_sz`. A path ending in `.gz` is written gzip-compressed
/// (zlib level 1: fast; the readers inflate any level at the same speed).
public struct RecordingWriter {
    public static let tradesHeader = "ts,price,size,side"
    public static let quotesHeader = "ts,bid_px,bid_sz,ask_px,ask_sz"

    private let handle: FileHandle?
    private let gz: gzFile?
    private let path: String
    private let instrument: Instrument
    private var buffer: [UInt8] = []

    /// Creates (or truncates) `path` and writes the header.
    public init(path: String, header: String, instrument: Instrument) throws(DataFileError) {
        if path.hasSuffix(".gz") {
            guard let gz = gzopen(path, "wb1") else { throw DataFileError(file: path, reason: "cannot be created") }
            self.gz = gz
            handle = nil
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil),
                let handle = FileHandle(forWritingAtPath: path)
            else { throw DataFileError(file: path, reason: "cannot be created") }
            self.handle = handle
            gz = nil
        }
        self.path = path
        self.instrument = instrument
        buffer.reserveCapacity(1 << 20)
        buffer.append(contentsOf: header.utf8)
        buffer.append(0x0A)
    }

    public mutating func write(_ t: TradeEvent) throws(DataFileError) {
        appendInteger(t.ts)
        buffer.append(0x2C)
        appendScaled(t.price, instrument.tick)
        buffer.append(0x2C)
        appendScaled(t.size, instrument.qtyStep)
        buffer.append(0x2C)
        switch t.side {
        case .buy: buffer.append(contentsOf: "Buy".utf8)
        case .sell: buffer.append(contentsOf: "Sell".utf8)
        case .unknown: break
        }
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }

    public mutating func write(_ q: QuoteEvent) throws(DataFileError) {
        appendInteger(q.ts)
        buffer.append(0x2C)
        appendScaled(q.bidPrice, instrument.tick)
        buffer.append(0x2C)
        appendScaled(q.bidSize, instrument.qtyStep)
        buffer.append(0x2C)
        appendScaled(q.askPrice, instrument.tick)
        buffer.append(0x2C)
        appendScaled(q.askSize, instrument.qtyStep)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Writes what is buffered.
    public mutating func flush() throws(DataFileError) {
        if let gz {
            let written = buffer.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
            guard buffer.isEmpty || written == Int32(buffer.count) else {
                throw DataFileError(file: path, reason: "write failed (zlib)")
            }
        } else if let handle {
            do {
                try handle.write(contentsOf: buffer)
            } catch {
                throw DataFileError(file: path, reason: "write failed: \(error.localizedDescription)")
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes the file.
    public mutating func close() throws(DataFileError) {
        try flush()
        if let gz {
            guard gzclose(gz) == Z_OK else { throw DataFileError(file: path, reason: "write failed (zlib close)") }
        } else {
            try? handle?.close()
        }
    }

    private mutating func appendInteger(_ value: Int64) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var v = value.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(v % 10) + 48
                v /= 10
                n += 1
            } while v > 0
            for i in stride(from: n - 1, through: 0, by: -1) { buffer.append(d[i]) }
        }
    }

    /// Appends `count * unit` as a plain decimal without trailing zeros.
    private mutating func appendScaled(_ count: Int64, _ unit: ScaledDecimal) {
        var m = count * unit.mantissa
        var s = unit.scale
        while s > 0 && m % 10 == 0 {
            m /= 10
            s -= 1
        }
        if m < 0 {
            buffer.append(UInt8(ascii: "-"))
            m = -m
        }
        if s == 0 {
            appendInteger(m)
            return
        }
        let divisor = powersOfTenInt[s]
        appendInteger(m / divisor)
        buffer.append(UInt8(ascii: "."))
        var fraction = m % divisor
        var place = divisor / 10
        while place > 0 {
            buffer.append(UInt8(fraction / place) + 48)
            fraction %= place
            place /= 10
        }
    }
}
