import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Kafka Streams' word count with {@code processing.guarantee=exactly_once_v2}: lines of
 * {@code --input} (string values) split into lower-case words, re-keyed by word through a
 * repartition topic ({@code <app-id>-words-repartition}), counted in a KTable backed by the RocksDB
 * store {@code counts} and its changelog topic ({@code <app-id>-counts-changelog}), and each new
 * count written to {@code --output} (string key, 8-byte long value).
 *
 * <p>Options: {@code --bootstrap}, {@code --app-id}, {@code --input}, {@code --output},
 * {@code --state-dir}, {@code --replication-factor} of the internal topics (default 1),
 * {@code --commit-interval-ms} (default 100), {@code --threads} (default 1), {@code --deadline-ms}
 * (run at most this long; default: until killed). Prints {@code STATE old new} on each state change
 * and {@code THREAD-ERROR exception} when a stream thread dies (it is replaced, which keeps the
 * exactly-once guarantee: a new thread resumes from what was committed). SIGTERM closes the
 * application cleanly; SIGKILL is also safe for the guarantee.
 */
public final class WordCountEos {
    public static void main(String[] argv) throws Exception {
        Args a = new Args(argv);
        String input = a.str("input");
        String output = a.str("output");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.str("app-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.str("bootstrap"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.STATE_DIR_CONFIG, a.str("state-dir"));
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, a.str("replication-factor", "1"));
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, a.str("commit-interval-ms", "100"));
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, a.str("threads", "1"));
        p.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, "0");
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(line -> Arrays.asList(line.toLowerCase().split("\\W+")))
            .filter((key, word) -> !word.isEmpty())
            .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Long()))
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(builder.build(), p);
        streams.setStateListener((now, before) -> {
            System.out.println("STATE\t" + before + "\t" + now);
            System.out.flush();
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.out.println("THREAD-ERROR\t" + e);
            System.out.flush();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            stop.countDown();
        }));
        streams.start();
        long deadline = a.num("deadline-ms", 0L);
        if (deadline > 0) {
            stop.await(deadline, TimeUnit.MILLISECONDS);
        } else {
            stop.await();
        }
        streams.close(Duration.ofSeconds(30));
        System.out.println("CLOSED");
    }
}
