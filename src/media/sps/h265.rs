//! The H.265 SPS up to the bit depths (H.265 7.3.2.2.1): size, and the general
//! profile/tier/level that both the codec string and the `hvcC` box repeat.

use super::bits::{BitReader, rbsp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H265Sps {
    /// Displayed size: the luma samples minus the conformance window.
    pub width: u32,
    pub height: u32,
    /// The general profile_tier_level, byte-aligned in every SPS and copied as is into
    /// `hvcC`: profile space/tier/profile (1 byte), compatibility flags (4), constraint
    /// flags (6), level (1).
    pub general_ptl: [u8; 12],
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    pub max_sub_layers_minus1: u8,
    pub temporal_id_nesting: bool,
}

impl H265Sps {
    pub fn profile_space(&self) -> u8 {
        self.general_ptl[0] >> 6
    }

    pub fn high_tier(&self) -> bool {
        self.general_ptl[0] & 0x20 != 0
    }

    pub fn profile_idc(&self) -> u8 {
        self.general_ptl[0] & 0x1f
    }

    pub fn level_idc(&self) -> u8 {
        self.general_ptl[11]
    }

    /// `hvc1.<space><profile>.<compat>.<tier><level>[.<constraint byte>...]` (ISO 14496-15
    /// Annex E.3): the compatibility flags bit-reversed in hex, trailing zero constraint
    /// bytes left out.
    pub fn codec_string(&self) -> String {
        let space = match self.profile_space() {
            0 => "",
            1 => "A",
            2 => "B",
            _ => "C",
        };
        let [_, c0, c1, c2, c3, constraints @ .., _] = self.general_ptl;
        let compat = u32::from_be_bytes([c0, c1, c2, c3]).reverse_bits();
        let tier = if self.high_tier() { 'H' } else { 'L' };
        let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{}", self.profile_idc(), self.level_idc());
        let used = constraints.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        for b in constraints.iter().take(used) {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// Parses an H.265 SPS NAL unit (2-byte header included, no start code).
pub fn parse_h265(nal: &[u8]) -> Result<H265Sps, String> {
    let ([h0, _], payload) = nal.split_first_chunk::<2>().ok_or("H.265 SPS: shorter than its NAL header")?;
    let kind = (h0 >> 1) & 0x3f;
    if kind != 33 {
        return Err(format!("H.265 SPS: NAL unit type {kind} where 33 (SPS) was expected"));
    }
    let data = rbsp(payload);
    let mut r = BitReader::new(&data, "H.265 SPS");
    r.bits("sps_video_parameter_set_id", 4)?;
    let max_sub_layers_minus1 = r.bits("sps_max_sub_layers_minus1", 3)?;
    if max_sub_layers_minus1 > 6 {
        return Err(format!("H.265 SPS: sps_max_sub_layers_minus1 {max_sub_layers_minus1} where at most 6 is allowed"));
    }
    let temporal_id_nesting = r.flag("sps_temporal_id_nesting_flag")?;
    let mut general_ptl = [0u8; 12];
    for b in general_ptl.iter_mut() {
        *b = r.u8("general profile_tier_level")?;
    }
    // The sub-layers' profile and level: only read past (H.265 7.3.3).
    let mut present = Vec::with_capacity(max_sub_layers_minus1 as usize);
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.flag("sub_layer_profile_present_flag")?, r.flag("sub_layer_level_present_flag")?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip("reserved_zero_2bits", 2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for (profile, level) in present {
        if profile {
            r.skip("sub_layer profile", 88)?;
        }
        if level {
            r.skip("sub_layer_level_idc", 8)?;
        }
    }
    r.ue_max("sps_seq_parameter_set_id", 15)?;
    let chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag("separate_colour_plane_flag")?;
    // Level 6.2 allows 8192x4320; 65535 is what an MP4 sample entry can say at all.
    let mut width = r.ue_max("pic_width_in_luma_samples", 65535)?;
    let mut height = r.ue_max("pic_height_in_luma_samples", 65535)?;
    if width == 0 || height == 0 {
        return Err(format!("H.265 SPS: picture size {width}x{height}"));
    }
    if r.flag("conformance_window_flag")? {
        // H.265 Table 6-1: offsets count in chroma samples.
        let (unit_x, unit_y) = match (separate_colour_plane, chroma_format_idc) {
            (false, 1) => (2, 2),
            (false, 2) => (2, 1),
            _ => (1, 1),
        };
        let mut offset = |name: &str| r.ue_max(name, 65535);
        let (left, right, top, bottom) = (
            offset("conf_win_left_offset")?,
            offset("conf_win_right_offset")?,
            offset("conf_win_top_offset")?,
            offset("conf_win_bottom_offset")?,
        );
        width = width
            .checked_sub(unit_x * (left + right))
            .filter(|w| *w > 0)
            .ok_or_else(|| format!("H.265 SPS: conformance window {left}+{right} leaves nothing of width {width}"))?;
        height = height
            .checked_sub(unit_y * (top + bottom))
            .filter(|h| *h > 0)
            .ok_or_else(|| format!("H.265 SPS: conformance window {top}+{bottom} leaves nothing of height {height}"))?;
    }
    let bit_depth_luma_minus8 = r.ue_max("bit_depth_luma_minus8", 8)? as u8;
    let bit_depth_chroma_minus8 = r.ue_max("bit_depth_chroma_minus8", 8)? as u8;
    Ok(H265Sps {
        width,
        height,
        general_ptl,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8,
        bit_depth_chroma_minus8,
        max_sub_layers_minus1: max_sub_layers_minus1 as u8,
        temporal_id_nesting,
    })
}
