use super::*;

#[test]
fn requests_encode_the_service_name_as_field_one() {
    assert!(encode_request("").is_empty());
    assert_eq!(&encode_request("a.B")[..], b"\x0a\x03a.B");
    let long = "x".repeat(200);
    let encoded = encode_request(&long);
    assert_eq!(&encoded[..3], b"\x0a\xc8\x01");
    assert_eq!(encoded.len(), 203);
}

#[test]
fn frames_carry_a_five_byte_prefix() {
    assert_eq!(&frame(b"")[..], b"\0\0\0\0\0");
    assert_eq!(&frame(b"ab")[..], b"\0\0\0\0\x02ab");
}

#[test]
fn responses_give_their_status() {
    assert_eq!(decode_response(&frame(b"\x08\x01")).unwrap(), 1);
    assert_eq!(decode_response(&frame(b"\x08\x02")).unwrap(), 2);
    // proto3 leaves UNKNOWN (0) out; an unknown field is skipped.
    assert_eq!(decode_response(&frame(b"")).unwrap(), 0);
    assert_eq!(decode_response(&frame(b"\x12\x01z\x08\x01")).unwrap(), 1);
    assert!(decode_response(b"\0\0").is_err());
    assert!(decode_response(b"\0\0\0\0\x09\x08").is_err());
    assert!(decode_response(b"\x01\0\0\0\0").is_err());
}
