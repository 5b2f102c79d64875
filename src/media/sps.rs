//! Sequence parameter sets: the picture size and the RFC 6381 codec string a browser needs
//! before it sees a frame (MSE's `addSourceBuffer`, WebCodecs' `VideoDecoderConfig`), and
//! the fields the `avcC`/`hvcC` boxes repeat. Only what comes before the VUI is read.
//!
//! The SPS comes from the camera, so it is hostile input: every read is bounds-checked and
//! every count is capped; a bad SPS is an `Err` that says which field and where, never a
//! panic (`panic = "abort"` would stop every camera).

mod bits;
mod h265;

pub use h265::{H265Sps, parse_h265};

use bits::{BitReader, rbsp};

/// What an H.264 SPS says that the MP4 writer and the browser need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H264Sps {
    /// Displayed size: the coded macroblocks minus the frame cropping.
    pub width: u32,
    pub height: u32,
    pub profile_idc: u8,
    /// The byte of constraint_set flags (RFC 6381's "profile compatibility").
    pub constraints: u8,
    pub level_idc: u8,
    /// 1 (4:2:0) unless a high profile says otherwise.
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
}

impl H264Sps {
    /// `avc1.PPCCLL` (RFC 6381 §3.3): profile, constraint flags and level in hex.
    pub fn codec_string(&self) -> String {
        format!("avc1.{:02X}{:02X}{:02X}", self.profile_idc, self.constraints, self.level_idc)
    }
}

/// Profiles whose SPS carries chroma format, bit depths and scaling lists (H.264 7.3.2.1.1).
fn high_profile(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135)
}

/// Parses an H.264 SPS NAL unit (header byte included, no start code).
pub fn parse_h264(nal: &[u8]) -> Result<H264Sps, String> {
    let (&header, payload) = nal.split_first().ok_or("H.264 SPS: empty NAL unit")?;
    if header & 0x1f != 7 {
        return Err(format!("H.264 SPS: NAL unit type {} where 7 (SPS) was expected", header & 0x1f));
    }
    let data = rbsp(payload);
    let mut r = BitReader::new(&data, "H.264 SPS");
    let profile_idc = r.u8("profile_idc")?;
    let constraints = r.u8("constraint_set flags")?;
    let level_idc = r.u8("level_idc")?;
    r.ue_max("seq_parameter_set_id", 31)?;
    let (mut chroma_format_idc, mut separate_colour_plane) = (1u32, false);
    let (mut depth_luma, mut depth_chroma) = (0u32, 0u32);
    if high_profile(profile_idc) {
        chroma_format_idc = r.ue_max("chroma_format_idc", 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag("separate_colour_plane_flag")?;
        }
        depth_luma = r.ue_max("bit_depth_luma_minus8", 6)?;
        depth_chroma = r.ue_max("bit_depth_chroma_minus8", 6)?;
        r.flag("qpprime_y_zero_transform_bypass_flag")?;
        if r.flag("seq_scaling_matrix_present_flag")? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag("seq_scaling_list_present_flag")? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max("log2_max_frame_num_minus4", 12)?;
    match r.ue_max("pic_order_cnt_type", 2)? {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)?;
        }
        1 => {
            r.flag("delta_pic_order_always_zero_flag")?;
            r.se("offset_for_non_ref_pic")?;
            r.se("offset_for_top_to_bottom_field")?;
            let cycle = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
            for _ in 0..cycle {
                r.se("offset_for_ref_frame")?;
            }
        }
        _ => {}
    }
    r.ue("max_num_ref_frames")?;
    r.flag("gaps_in_frame_num_value_allowed_flag")?;
    // 8192 macroblocks is 131072 pixels: far past any level's limit, and no overflow below.
    let width_mbs = r.ue_max("pic_width_in_mbs_minus1", 8191)? + 1;
    let height_units = r.ue_max("pic_height_in_map_units_minus1", 8191)? + 1;
    let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
    if !frame_mbs_only {
        r.flag("mb_adaptive_frame_field_flag")?;
    }
    r.flag("direct_8x8_inference_flag")?;
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_units * 16 * field_factor;
    if r.flag("frame_cropping_flag")? {
        // H.264 7.4.2.1.1: the crop unit follows the chroma subsampling (ChromaArrayType).
        let (unit_x, unit_y) = match (separate_colour_plane, chroma_format_idc) {
            (true, _) | (_, 0) => (1, field_factor),
            (_, 1) => (2, 2 * field_factor),
            (_, 2) => (2, field_factor),
            _ => (1, field_factor),
        };
        let mut crop = |name: &str| r.ue_max(name, 1 << 16);
        let (left, right, top, bottom) = (
            crop("frame_crop_left_offset")?,
            crop("frame_crop_right_offset")?,
            crop("frame_crop_top_offset")?,
            crop("frame_crop_bottom_offset")?,
        );
        width = width
            .checked_sub(unit_x * (left + right))
            .filter(|w| *w > 0)
            .ok_or_else(|| format!("H.264 SPS: cropping {left}+{right} leaves nothing of width {width}"))?;
        height = height
            .checked_sub(unit_y * (top + bottom))
            .filter(|h| *h > 0)
            .ok_or_else(|| format!("H.264 SPS: cropping {top}+{bottom} leaves nothing of height {height}"))?;
    }
    Ok(H264Sps {
        width,
        height,
        profile_idc,
        constraints,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: depth_luma as u8,
        bit_depth_chroma_minus8: depth_chroma as u8,
    })
}

/// H.264 7.3.2.1.1.1: only read past, the sizes do not depend on the lists.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), String> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se("delta_scale")?;
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
