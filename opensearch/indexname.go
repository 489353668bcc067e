// Index names: CheckIndexName, OpenSearch's rules for them.

package opensearch

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxIndexNameBytes is OpenSearch's bound on an index name (MAX_INDEX_NAME_BYTES).
const maxIndexNameBytes = 255

// indexNameForbidden are the characters OpenSearch refuses in an index name.
const indexNameForbidden = `\/*?"<>| ,#:`

// indexNameRules are OpenSearch's rules for index names, as an error or a hint states them.
const indexNameRules = `lower case; not "." or ".."; none of \ / * ? " < > | , # : or a space; not starting with _, - or +; at most 255 bytes`

// CheckIndexName returns an error when OpenSearch would refuse name as the name of an index,
// as OpenSearch 2.x checks it when it creates one (MetadataCreateIndexService): it must not
// be empty, "." or ".."; it must be lower case; it must hold none of \ / * ? " < > | , # :
// nor a space; it must not start with _, - or +; and it must be at most 255 bytes long. The
// error quotes the name and says which rule it breaks. A bulk request into such a name is
// refused for every document (invalid_index_name_exception), so a program checks a fixed
// name, or the prefix of a daily one made into a whole name, at its start.
//
// It does not say whether the name is free: an alias may hold it.
func CheckIndexName(name string) error {
	why := ""
	bad := strings.IndexAny(name, indexNameForbidden)
	switch {
	case name == "":
		why = "must not be empty"
	case name == "." || name == "..":
		why = `must not be "." or ".."`
	case !utf8.ValidString(name):
		why = "is not valid UTF-8"
	case strings.ToLower(name) != name:
		why = "must be lower case"
	case bad >= 0:
		r, _ := utf8.DecodeRuneInString(name[bad:])
		why = fmt.Sprintf("must not hold %q", r)
	case strings.ContainsRune("_-+", rune(name[0])):
		why = "must not start with _, - or +"
	case len(name) > maxIndexNameBytes:
		why = fmt.Sprintf("is %d bytes long, more than %d", len(name), maxIndexNameBytes)
	default:
		return nil
	}
	quoted := name
	if len(quoted) > 64 {
		quoted = strings.ToValidUTF8(quoted[:64], "") + "..."
	}
	return fmt.Errorf("opensearch: index name %q %s (OpenSearch's index names: %s)", quoted, why, indexNameRules)
}
