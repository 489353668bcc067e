// The names Kafka accepts for topics and group instance ids: CheckTopic, CheckInstanceID,
// and the checks every constructor makes.

package kafka

import (
	"fmt"
	"unicode/utf8"
)

// maxTopicLen is the longest topic name Kafka accepts, and the longest group instance id
// (group.instance.id: Kafka holds it to a topic name's rules).
const maxTopicLen = 249

// quotedPrefix is how much of a name longer than Kafka's limit an error quotes: a mistaken
// flag value of 10,000 characters must not make an error line of 10 KB.
const quotedPrefix = 64

// CheckTopic returns nil if name is a topic name Kafka accepts: 1 to 249 characters of
// a-z, A-Z, 0-9, '.', '_' and '-', and not "." or "..". Otherwise its error says what is
// wrong: the first character Kafka refuses and its position (from 1), the length past 249,
// or the name "." or "..". It quotes a name longer than 249 characters by its first 64
// and gives its length. A program can check its configuration with it before it connects;
// the constructors (NewSource, NewProducer, NewExchange, NewTable, ...) refuse such a name
// with ErrInvalidOption and the same words.
func CheckTopic(name string) error {
	if err := topicError(name); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// CheckInstanceID returns nil if id is a group instance id (Config.Rebalance.InstanceID,
// Kafka's group.instance.id) that Kafka accepts: as a topic name, 1 to 249 characters of
// a-z, A-Z, 0-9, '.', '_' and '-', and not "." or "..". Otherwise its error says what is
// wrong in CheckTopic's words. A program can check an id it is given (a flag, a pod's name)
// before it connects; NewSource and NewExchange refuse such an id with ErrInvalidOption and
// the same words. An empty Config.Rebalance.InstanceID means a dynamic member and is not
// checked; CheckInstanceID("") is an error, as Kafka refuses an empty id. An Exchange joins
// with the id and its own name after it (id.name), which must be an id Kafka accepts too.
func CheckInstanceID(id string) error {
	if err := instanceIDError(id); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// topicName returns an error wrapping ErrInvalidOption, for setting, if topic is not a
// name Kafka accepts (see CheckTopic).
func topicName(setting, topic string) error {
	if err := topicError(topic); err != nil {
		return invalid(setting, "%v", err)
	}
	return nil
}

// topicError is CheckTopic's error without the package's prefix.
func topicError(name string) error { return nameError("topic name", "topic named", name) }

// instanceIDError is CheckInstanceID's error without the package's prefix.
func instanceIDError(id string) error {
	return nameError("group instance id", "group instance id", id)
}

// nameError checks name by the rules Kafka holds topic names and group instance ids to
// (Java's Topic.validate), and returns an error naming what it is, or nil. named completes
// "Kafka takes no ... "." or ".."".
func nameError(what, named, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s", what)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q: Kafka takes no %s \".\" or \"..\"", what, name, named)
	}
	if err := badTopicChar(what, name); err != nil {
		return err
	}
	if n := len(name); n > maxTopicLen {
		// Every character is one byte here (badTopicChar passed).
		return fmt.Errorf("%s %s: %d characters, past Kafka's limit of %d", what, quoteName(name), n, maxTopicLen)
	}
	return nil
}

// badTopicChar returns an error naming what (a topic name, or a group instance id, which
// Kafka holds to the same characters) and its first character outside a-z, A-Z, 0-9, '.',
// '_' and '-', with its position from 1, or nil if there is none.
func badTopicChar(what, s string) error {
	pos := 0
	for i, r := range s {
		pos++
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			continue
		}
		char := fmt.Sprintf("%q", r)
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				char = fmt.Sprintf("byte %#x (not UTF-8)", s[i])
			}
		}
		q := quoteName(s)
		if len(s) > maxTopicLen {
			q += fmt.Sprintf(" (%d characters)", utf8.RuneCountInString(s))
		}
		return fmt.Errorf("%s %s: character %d, %s, is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')", what, q, pos, char)
	}
	return nil
}

// quoteName quotes s for an error: whole when it is no longer than Kafka's limit, else its
// first quotedPrefix bytes (not cutting a UTF-8 character in two) followed by "...".
func quoteName(s string) string {
	if len(s) <= maxTopicLen {
		return fmt.Sprintf("%q", s)
	}
	cut := quotedPrefix
	for range utf8.UTFMax - 1 {
		if utf8.RuneStart(s[cut]) {
			break
		}
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}
