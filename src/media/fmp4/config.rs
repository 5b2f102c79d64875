//! The decoder configuration records (ISO 14496-15): the payload of the `avcC`/`hvcC` box in
//! the init segment, and byte for byte what WebCodecs' `VideoDecoderConfig.description`
//! wants, so the live path hands a browser the same bytes the recording uses.

use crate::media::sps::{H264Sps, H265Sps};

/// NAL units are prefixed by their length in 4 bytes: `AccessUnit::data`'s form.
const LENGTH_SIZE_MINUS_ONE: u8 = 3;

fn push_nal(out: &mut Vec<u8>, what: &str, nal: &[u8]) -> Result<(), String> {
    let len = u16::try_from(nal.len()).map_err(|_| format!("{what} of {} bytes is too long for the box", nal.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

/// AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1) with one SPS and one PPS.
pub fn avcc(info: &H264Sps, sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(16 + sps.len() + pps.len());
    out.extend_from_slice(&[1, info.profile_idc, info.constraints, info.level_idc, 0xfc | LENGTH_SIZE_MINUS_ONE]);
    out.push(0xe0 | 1); // one SPS
    push_nal(&mut out, "SPS", sps)?;
    out.push(1); // one PPS
    push_nal(&mut out, "PPS", pps)?;
    // These profiles repeat chroma format and bit depths after the parameter sets.
    if matches!(info.profile_idc, 100 | 110 | 122 | 144) {
        out.extend_from_slice(&[
            0xfc | info.chroma_format_idc,
            0xf8 | info.bit_depth_luma_minus8,
            0xf8 | info.bit_depth_chroma_minus8,
            0, // no SPS extensions
        ]);
    }
    Ok(out)
}

/// HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1) with one VPS, SPS and PPS, each
/// array marked complete (no parameter sets in the samples are needed to decode).
pub fn hvcc(info: &H265Sps, vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(40 + vps.len() + sps.len() + pps.len());
    out.push(1);
    out.extend_from_slice(&info.general_ptl);
    out.extend_from_slice(&[
        0xf0,
        0x00, // min_spatial_segmentation_idc 0: not known
        0xfc, // parallelismType 0: not known
        0xfc | info.chroma_format_idc,
        0xf8 | info.bit_depth_luma_minus8,
        0xf8 | info.bit_depth_chroma_minus8,
        0x00,
        0x00, // avgFrameRate 0: not known
    ]);
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne.
    let layers = (info.max_sub_layers_minus1 + 1) & 0x07;
    out.push((layers << 3) | (u8::from(info.temporal_id_nesting) << 2) | LENGTH_SIZE_MINUS_ONE);
    out.push(3); // numOfArrays
    for (kind, what, nal) in [(32u8, "VPS", vps), (33, "SPS", sps), (34, "PPS", pps)] {
        out.push(0x80 | kind); // array_completeness
        out.extend_from_slice(&1u16.to_be_bytes());
        push_nal(&mut out, what, nal)?;
    }
    Ok(out)
}
