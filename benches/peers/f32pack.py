# Packs a float32 safetensors checkpoint for the device machine (whose transfer is capped at 64 MiB):
# byte planes, the lowest 12 mantissa bits dropped (relative error <= 2^-12 after unpacking to the
# middle of the dropped interval), lzma. `f32pack.py pack IN OUT` here, `f32pack.py unpack IN OUT` there.
import lzma, struct, sys
def pack(src, dst):
    d = open(src, 'rb').read()
    hl = struct.unpack('<Q', d[:8])[0]
    head, body = d[:8 + hl], d[8 + hl:]
    assert len(body) % 4 == 0
    # byte 0 (lowest mantissa bits) dropped, the low nibble of byte 1 zeroed: 12 bits gone
    planes = [bytes(b & 0xF0 for b in body[1::4]), body[2::4], body[3::4]]
    blob = struct.pack('<QQ', len(head), len(body)) + head + b''.join(planes)
    open(dst, 'wb').write(lzma.compress(blob, preset=9 | lzma.PRESET_EXTREME))
def unpack(src, dst):
    blob = lzma.decompress(open(src, 'rb').read())
    hl, bl = struct.unpack('<QQ', blob[:16])
    head = blob[16:16 + hl]
    n = bl // 4
    p = blob[16 + hl:]
    body = bytearray(bl)
    for i in range(1, 4):
        body[i::4] = p[(i - 1) * n:i * n]
    # the middle of the dropped interval: 0x08 in byte 1's low nibble, 0x00 in byte 0
    body[1::4] = bytes(b | 0x08 for b in body[1::4])
    open(dst, 'wb').write(head + bytes(body))
if __name__ == '__main__':
    (pack if sys.argv[1] == 'pack' else unpack)(sys.argv[2], sys.argv[3])
