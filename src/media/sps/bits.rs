//! Reading parameter sets bit by bit: emulation prevention removed first (H.264 7.4.1,
//! H.265 7.4.2), then fixed-width fields and exp-Golomb codes (H.264 9.1), each read with
//! the name of its field so that an error says what was being read and where.

/// The RBSP of a NAL unit payload: every `00 00 03` loses its `03`, which the encoder
/// inserted so that the payload never looks like a start code.
pub fn rbsp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &b in payload {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next bit to read, counted from the first byte's most significant bit.
    pos: usize,
    /// "H.264 SPS": the start of every error message.
    what: &'static str,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], what: &'static str) -> BitReader<'a> {
        BitReader { data, pos: 0, what }
    }

    fn error(&self, field: &str, why: &str) -> String {
        format!("{}: {field} at bit {}: {why}", self.what, self.pos)
    }

    fn bit(&mut self, field: &str) -> Result<u32, String> {
        let byte = self.data.get(self.pos / 8).ok_or_else(|| self.error(field, "the data ends here"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    /// `n` ≤ 32 bits, most significant first.
    pub fn bits(&mut self, field: &str, n: u32) -> Result<u32, String> {
        let mut v = 0u64;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.bit(field)?);
        }
        Ok(v as u32)
    }

    pub fn flag(&mut self, field: &str) -> Result<bool, String> {
        Ok(self.bit(field)? == 1)
    }

    pub fn u8(&mut self, field: &str) -> Result<u8, String> {
        Ok(self.bits(field, 8)? as u8)
    }

    pub fn skip(&mut self, field: &str, n: usize) -> Result<(), String> {
        let end = self.pos.saturating_add(n);
        if end > self.data.len().saturating_mul(8) {
            return Err(self.error(field, &format!("{n} bits wanted, the data ends first")));
        }
        self.pos = end;
        Ok(())
    }

    /// ue(v): an unsigned exp-Golomb code. More than 31 leading zeros cannot be a u32.
    pub fn ue(&mut self, field: &str) -> Result<u32, String> {
        let mut zeros = 0;
        while self.bit(field)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(self.error(field, "exp-Golomb code longer than 32 bits"));
            }
        }
        let rest = u64::from(self.bits(field, zeros)?);
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    /// ue(v) with the largest value the standard allows for this field.
    pub fn ue_max(&mut self, field: &str, max: u32) -> Result<u32, String> {
        let v = self.ue(field)?;
        if v > max {
            return Err(self.error(field, &format!("{v} where at most {max} is allowed")));
        }
        Ok(v)
    }

    /// se(v): a signed exp-Golomb code (1, -1, 2, -2, ...).
    pub fn se(&mut self, field: &str) -> Result<i64, String> {
        let k = i64::from(self.ue(field)?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}
