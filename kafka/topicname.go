// The names Kafka accepts for topics: CheckTopic, and the check every constructor makes.

package kafka

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxTopicLen is the longest topic name Kafka accepts.
const maxTopicLen = 249

// CheckTopic returns nil if name is a topic name Kafka accepts: 1 to 249 characters of
// a-z, A-Z, 0-9, '.', '_' and '-', and not "." or "..". Otherwise its error says what is
// wrong: the first character Kafka refuses and its position (from 1), the length past 249,
// or the name "." or "..". A program can check its configuration with it before it
// connects; the constructors (NewSource, NewProducer, NewExchange, NewTable, ...) refuse
// such a name with ErrInvalidOption and the same words.
func CheckTopic(name string) error {
	if err := topicError(name); err != nil {
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
func topicError(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q: Kafka takes no topic named \".\" or \"..\"", name)
	}
	if err := badTopicChar("topic name", name); err != nil {
		return err
	}
	if n := len(name); n > maxTopicLen {
		return fmt.Errorf("topic name %q: %d characters, past Kafka's limit of %d", name, n, maxTopicLen)
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
		return fmt.Errorf("%s %q: character %d, %s, is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')", what, s, pos, char)
	}
	return nil
}
