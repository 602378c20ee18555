// franz-interop drives a Kafka-compatible broker with franz-go, for Fjord's
// interop tests (broker/tests/interop_franz.rs, broker/tests/crash_restart.rs).
//
//	franz-interop create-topic --brokers B --topic T --partitions P
//	franz-interop produce --brokers B --topic T --count N [--key-prefix k] [--value-prefix v]
//	        [--value-bytes 0] [--acks all|leader|none] [--idempotent=true] [--compression none]
//	        [--partition -1] [--out FILE] [--timeout 60s]
//	franz-interop consume --brokers B --topic T [--partition -1] [--from 0]
//	        [--count N | --to-end] [--timeout 60s]
//
// produce writes one line per acknowledged record, "partition offset key value",
// tab-separated, in acknowledgement order, to stdout or (unbuffered, so a
// SIGKILL loses nothing acknowledged) to --out. Record i has key
// "<key-prefix><i>" and value "<value-prefix><i>", padded with '.' to
// --value-bytes. With --partition >= 0 every record goes to that partition;
// otherwise franz-go's default key-hash partitioner picks.
//
// consume reads by explicit partition assignment (no group) from offset
// --from and prints the same line for each record, per partition in offset
// order. --to-end first asks the broker for each partition's end offset
// (ListOffsets, latest) and stops when every partition has reached it.
// A null key prints as "<null>".
//
// Any error exits non-zero with the error on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: franz-interop create-topic|produce|consume [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "create-topic":
		err = createTopic(os.Args[2:])
	case "produce":
		err = produce(os.Args[2:])
	case "consume":
		err = consume(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "franz-interop:", err)
		os.Exit(1)
	}
}

func brokerList(s string) []string { return strings.Split(s, ",") }

func createTopic(args []string) error {
	fs := flag.NewFlagSet("create-topic", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap servers")
	topic := fs.String("topic", "", "topic")
	partitions := fs.Int("partitions", 1, "partitions")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerList(*brokers)...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(*partitions), 1, nil, *topic)
	if err != nil {
		return err
	}
	if resp.Err != nil {
		return fmt.Errorf("creating %s: %w (%s)", *topic, resp.Err, resp.ErrMessage)
	}
	fmt.Printf("created %s with %d partitions\n", *topic, *partitions)
	return nil
}

func produce(args []string) error {
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap servers")
	topic := fs.String("topic", "", "topic")
	count := fs.Int("count", 100, "records to produce")
	keyPrefix := fs.String("key-prefix", "k", "key prefix")
	valuePrefix := fs.String("value-prefix", "v", "value prefix")
	valueBytes := fs.Int("value-bytes", 0, "pad each value with '.' to this many bytes")
	acks := fs.String("acks", "all", "all|leader|none")
	idempotent := fs.Bool("idempotent", true, "idempotent producer (franz-go's default; needs acks=all)")
	compression := fs.String("compression", "none", "none|gzip|snappy|lz4|zstd")
	partition := fs.Int("partition", -1, "fixed partition, or -1 for the key-hash partitioner")
	out := fs.String("out", "", "file for the acknowledged records (default stdout)")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline for all acknowledgements")
	fs.Parse(args)

	opts := []kgo.Opt{kgo.SeedBrokers(brokerList(*brokers)...), kgo.DefaultProduceTopic(*topic)}
	switch *acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		return fmt.Errorf("bad --acks %q", *acks)
	}
	if !*idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	codec, err := codecFor(*compression)
	if err != nil {
		return err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f // *os.File is unbuffered: each line is written at its ack
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < *count; i++ {
		value := fmt.Sprintf("%s%d", *valuePrefix, i)
		if pad := *valueBytes - len(value); pad > 0 {
			value += strings.Repeat(".", pad)
		}
		r := &kgo.Record{Key: []byte(fmt.Sprintf("%s%d", *keyPrefix, i)), Value: []byte(value)}
		if *partition >= 0 {
			r.Partition = int32(*partition)
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("record %s: %w", r.Key, err)
				}
				return
			}
			fmt.Fprintf(w, "%d\t%d\t%s\t%s\n", r.Partition, r.Offset, r.Key, r.Value)
		})
	}
	wg.Wait()
	return firstErr
}

func codecFor(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("bad --compression %q", name)
}

func consume(args []string) error {
	fs := flag.NewFlagSet("consume", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap servers")
	topic := fs.String("topic", "", "topic")
	partition := fs.Int("partition", -1, "one partition, or -1 for all")
	from := fs.Int64("from", 0, "start offset in every consumed partition")
	count := fs.Int("count", -1, "stop after this many records in all")
	toEnd := fs.Bool("to-end", false, "stop at the end offsets the broker reports at the start")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline")
	fs.Parse(args)
	if (*count < 0) == !*toEnd {
		return errors.New("give exactly one of --count and --to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokerList(*brokers)...))
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, *topic)
	admCl.Close()
	if err != nil {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	want := map[int32]int64{} // partition -> end offset to reach (only with --to-end)
	assign := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if *partition >= 0 && o.Partition != int32(*partition) {
			return
		}
		assign[o.Partition] = kgo.NewOffset().At(*from)
		if o.Offset > *from {
			want[o.Partition] = o.Offset
		}
	})
	if len(assign) == 0 {
		return fmt.Errorf("topic %s has no partition %d", *topic, *partition)
	}
	got := map[int32][]string{}
	total := 0
	done := func() bool {
		if *toEnd {
			return len(want) == 0
		}
		return total >= *count
	}
	if !done() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokerList(*brokers)...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: assign}))
		if err != nil {
			return err
		}
		defer cl.Close()
		for !done() {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return fmt.Errorf("timed out with %d records (still waiting for %v)", total, want)
			}
			var ferr error
			fetches.EachError(func(t string, p int32, err error) {
				if ferr == nil {
					ferr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
				}
			})
			if ferr != nil {
				return ferr
			}
			fetches.EachRecord(func(r *kgo.Record) {
				if *toEnd {
					end, ok := want[r.Partition]
					if !ok || r.Offset >= end {
						return
					}
					if r.Offset == end-1 {
						delete(want, r.Partition)
					}
				} else if total >= *count {
					return
				}
				key := "<null>"
				if r.Key != nil {
					key = string(r.Key)
				}
				got[r.Partition] = append(got[r.Partition], fmt.Sprintf("%d\t%d\t%s\t%s\n", r.Partition, r.Offset, key, r.Value))
				total++
			})
		}
	}
	parts := make([]int32, 0, len(got))
	for p := range got {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		for _, line := range got[p] {
			fmt.Print(line)
		}
	}
	return nil
}
