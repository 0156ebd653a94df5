package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/thingtracker/ttn/cmd/internal/flags"
	"github.com/thingtracker/ttn/cmd/internal/output"
	"github.com/thingtracker/ttn/control"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

func searchCmd() *ffcli.Command {
	var q view.SearchQuery
	var format, tracker string
	return command("search", "announcer search [--licence L] [--tag T] [--author ID] [--tracker ID] [--trust LEVEL] [--flagged] [--from N] [--limit N] [--format json|text] TEXT...",
		"Search the Things this node holds, by text and facets.",
		`Searches the latest version of every Thing the log holds: the words of TEXT
(all of them) in titles, descriptions, tags, categories, licences, the Things'
authors, tracker and node names; best matches first. --licence, --tag,
--author (the node that announced it), --tracker and --trust (the author's
level here: self, verified, trusted, marginal, web, unknown, ...) keep the
Things that carry the value; with no TEXT every Thing that passes them is
listed. Flagged Things are left out unless --flagged. The facets count every
match by licence, tag, author, tracker and trust level.

With a node running on the dir, the node answers from its index; without
one, the command opens DIR/index itself and first reads into it what the log
gained since it was last fed (all of it, the first time).`,
		func(fs *flag.FlagSet) {
			fs.StringVar(&q.Licence, "licence", "", "only Things under this licence (any case)")
			fs.StringVar(&q.Tag, "tag", "", "only Things with this tag (any case)")
			fs.StringVar(&q.Author, "author", "", "only Things announced by this node ID")
			fs.StringVar(&tracker, "tracker", "", "only Things of this tracker ID")
			fs.StringVar(&q.Trust, "trust", "", "only Things whose author is at this trust level here")
			fs.BoolVar(&q.Flagged, "flagged", false, "include flagged Things")
			fs.IntVar(&q.From, "from", 0, "skip this many hits (paging)")
			fs.IntVar(&q.Limit, "limit", view.DefaultSearchLimit, fmt.Sprintf("show at most this many hits (1 to %d)", view.MaxSearchLimit))
			fs.StringVar(&format, "format", output.Text, "json or text")
		},
		func(ctx context.Context, c *flags.Common, args []string) error {
			if err := output.CheckFormat(format); err != nil {
				return flags.Usagef("%v", err)
			}
			q.Text = strings.Join(args, " ")
			if tracker != "" {
				t, err := topics.ParseTrackerID(tracker)
				if err != nil {
					return flags.Usagef("--tracker: %v", err)
				}
				q.Tracker = t
			}
			if q.Limit == 0 {
				return flags.Usagef("--limit: want 1 to %d", view.MaxSearchLimit)
			}
			if err := q.Check(); err != nil {
				return flags.Usagef("%v", err)
			}
			return withDir(c, func(d control.Operations) error {
				res, err := d.Search(ctx, q)
				if err != nil {
					return err
				}
				return show(format, res, printSearch)
			})
		})
}

func printSearch(r *view.SearchResult) {
	w := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(w, "TRACKER\tTHING\tVERSION\tTRUST\tTITLE\n")
	for _, h := range r.Hits {
		title := ""
		if h.Thing != nil {
			title = h.Thing.Title
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", h.Tracker, output.OneLine(h.ID), output.OneLine(h.Version), h.Trust, output.OneLine(title))
	}
	w.Flush()
	fmt.Printf("%d matching", r.Total)
	if r.Behind > 0 {
		fmt.Printf(" (the index is %d log entries behind)", r.Behind)
	}
	fmt.Println()
	for _, f := range []struct {
		name string
		fc   []view.FacetCount
	}{{"licence", r.Facets.Licence}, {"tag", r.Facets.Tag}, {"author", r.Facets.Author}, {"tracker", r.Facets.Tracker}, {"trust", r.Facets.Trust}} {
		if len(f.fc) == 0 {
			continue
		}
		parts := make([]string, len(f.fc))
		for i, v := range f.fc {
			parts[i] = fmt.Sprintf("%s %d", output.OneLine(v.Value), v.Count)
			if v.Name != "" {
				parts[i] = fmt.Sprintf("%s (%s) %d", output.OneLine(v.Value), output.OneLine(v.Name), v.Count)
			}
		}
		fmt.Printf("%s: %s\n", f.name, strings.Join(parts, ", "))
	}
}

func reindexCmd() *ffcli.Command {
	return command("reindex", "announcer reindex",
		"Rebuild the search index (DIR/index) from the log.",
		`Reads the whole log into a new search index beside DIR/index and replaces
it. With a node running on the dir, the node rebuilds its index and answers
searches from the old one meanwhile; without one, the command does it. The
index is only ever derived from the log: rebuilding it loses nothing.`,
		nil,
		func(ctx context.Context, c *flags.Common, args []string) error {
			if len(args) != 0 {
				return flags.Usagef("reindex takes no arguments")
			}
			return withDir(c, func(d control.Operations) error {
				if err := d.Reindex(ctx); err != nil {
					return err
				}
				_, running := d.(*control.Client)
				fmt.Fprintf(os.Stderr, "reindexed %s\n", map[bool]string{true: "by the running node", false: "offline"}[running])
				return nil
			})
		})
}
