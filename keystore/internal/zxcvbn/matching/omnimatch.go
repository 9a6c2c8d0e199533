package matching

import (
	"regexp"
	"sync"

	"github.com/keytree-dev/keytree/keystore/internal/zxcvbn/adjacency"
	"github.com/keytree-dev/keytree/keystore/internal/zxcvbn/frequency"
	"github.com/keytree-dev/keytree/keystore/internal/zxcvbn/match"
)

func Omnimatch(password string, userInputs []string) (matches []*match.Match) {
	dictMatcher := defaultRankedDictionnaries().withDict("user_inputs", buildRankedDict(userInputs))

	matchers := []match.Matcher{
		dictMatcher,
		reverseDictionnaryMatch{dm: dictMatcher},
		l33tMatch{dm: dictMatcher, table: l33tTable()},
		spatialMatch{graphs: defaultGraphs()},
		repeatMatch{},
		sequenceMatch{},
		regexpMatch{regexes: defaultRegexpMatch()},
		dateMatch{},
	}

	for _, m := range matchers {
		matches = append(matches, m.Matches(password)...)
	}
	match.Sort(matches)
	return matches
}

// keytree: the dictionaries, the graphs, the l33t table and the regexp are built on first
// use, not at program start (see ../README.md).
var (
	defaultRankedDictionnaries = sync.OnceValue(loadDefaultDictionnaries)
	defaultGraphs              = sync.OnceValue(loadDefaultAdjacencyGraphs)
	defaultRegexpMatch         = sync.OnceValue(func() []struct {
		Name   string
		Regexp *regexp.Regexp
	} {
		return []struct {
			Name   string
			Regexp *regexp.Regexp
		}{
			{
				Name:   "recent_year",
				Regexp: regexp.MustCompile(`19\d\d|200\d|201\d`),
			},
		}
	})
	l33tTable = sync.OnceValue(func() map[string][]string {
		return map[string][]string{
			"a": {"4", "@"},
			"b": {"8"},
			"c": {"(", "{", "[", "<"},
			"e": {"3"},
			"g": {"6", "9"},
			"i": {"1", "!", "|"},
			"l": {"1", "|", "7"},
			"o": {"0"},
			"s": {"$", "5"},
			"t": {"+", "7"},
			"x": {"%"},
			"z": {"2"},
		}
	})
)

func loadDefaultDictionnaries() dictionaryMatch {
	rd := make(map[string]rankedDictionnary)
	for n, list := range frequency.FrequencyLists() {
		rd[n] = buildRankedDict(list)
	}
	return dictionaryMatch{
		rankedDictionaries: rd,
	}
}

func loadDefaultAdjacencyGraphs() []*adjacency.Graph {
	return []*adjacency.Graph{
		adjacency.Graphs()["qwerty"],
		adjacency.Graphs()["dvorak"],
		adjacency.Graphs()["keypad"],
		adjacency.Graphs()["mac_keypad"],
	}

}
