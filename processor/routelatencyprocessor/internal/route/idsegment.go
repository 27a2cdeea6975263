package route

// Placeholders written in place of path segments that are identifiers rather than names.
const (
	placeholderInt   = "{id}"
	placeholderUUID  = "{uuid}"
	placeholderULID  = "{ulid}"
	placeholderDate  = "{date}"
	placeholderToken = "{token}"
)

// Lengths from which hex and base64-like segments are taken for ids (16 hex chars = 64 bits).
const (
	minTokenLength  = 16
	minBase64Length = 20
)

// idPlaceholder returns the placeholder for a segment that looks like an id, or "" for a segment to keep.
func idPlaceholder(seg string) string {
	if seg == "" {
		return ""
	}
	switch {
	case isDigits(seg):
		return placeholderInt
	case isUUID(seg):
		return placeholderUUID
	case isDate(seg):
		return placeholderDate
	case isULID(seg):
		return placeholderULID
	case isToken(seg):
		return placeholderToken
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isUUID accepts the canonical 8-4-4-4-12 form, any version, either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isDate accepts YYYY-MM-DD.
func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	return isDigits(s[0:4]) && isDigits(s[5:7]) && isDigits(s[8:10]) &&
		s[5:7] >= "01" && s[5:7] <= "12" && s[8:10] >= "01" && s[8:10] <= "31"
}

// isULID accepts 26 Crockford base32 characters with a leading 0-7 and at least one digit, so that a 26-letter
// word is kept.
func isULID(s string) bool {
	if len(s) != 26 || s[0] < '0' || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // lower case letters; digits are unchanged
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u':
		default:
			return false
		}
	}
	return true
}

// isToken accepts opaque keys: hex strings of minTokenLength or more with a digit (hashes, trace ids), and
// base64/base64url-like strings of minBase64Length or more that mix digits, upper and lower case (session ids, API
// keys). Slugs such as "annual-report-2024" have no upper case and are kept.
func isToken(s string) bool {
	if len(s) < minTokenLength {
		return false
	}
	var digits, upper, lower, hex int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'z':
			lower++
			if c <= 'f' {
				hex++
			}
		case c >= 'A' && c <= 'Z':
			upper++
			if c <= 'F' {
				hex++
			}
		case c == '-' || c == '_' || c == '+' || c == '=':
		default:
			return false
		}
	}
	if digits == 0 {
		return false
	}
	if hex == len(s) {
		return true
	}
	return len(s) >= minBase64Length && upper > 0 && lower > 0
}
