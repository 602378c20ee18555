import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads every partition of {@code --topic} from the beginning (assigned, no group) with
 * {@code --isolation read_committed} (the default) or {@code read_uncommitted}, and prints each
 * record as a tab-separated {@code partition offset key value} line, flushed after each poll.
 * Values are strings, or with {@code --value long} 8-byte longs (Kafka Streams' counts).
 *
 * <p>Stops when the first of these holds: {@code --expect N} records were read and then
 * {@code --settle-ms} more passed (to catch records beyond those expected); with {@code --to-end},
 * every partition's position reached its end offset as seen at the start (for read_committed the
 * last stable offset); {@code --timeout-ms} (default 60000) passed. Then prints to stderr a line
 * {@code # read N records; end offsets {...}; positions {...}} (end offsets as this isolation level
 * sees them now) and exits 0; 1 on an error.
 */
public final class ReadCommittedCheck {
    public static void main(String[] argv) {
        Args a = new Args(argv);
        String topic = a.str("topic");
        String isolation = a.str("isolation", "read_committed");
        long expect = a.num("expect", Long.MAX_VALUE);
        long settleMs = a.num("settle-ms", 0L);
        long timeoutMs = a.num("timeout-ms", 60_000L);
        boolean toEnd = a.flag("to-end");
        boolean longValues = a.str("value", "string").equals("long");

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.str("bootstrap"));
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "check-" + isolation);
        PrintStream out = System.out;
        StringDeserializer strings = new StringDeserializer();
        LongDeserializer longs = new LongDeserializer();
        long start = System.currentTimeMillis();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = partitions(consumer, topic, start + timeoutMs);
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> ends = toEnd ? consumer.endOffsets(parts, Duration.ofSeconds(30)) : Map.of();
            long read = 0;
            long reachedAt = -1;
            while (true) {
                long now = System.currentTimeMillis();
                if (now - start >= timeoutMs) {
                    System.err.println("# timed out after " + timeoutMs + " ms");
                    break;
                }
                if (read >= expect) {
                    if (reachedAt < 0) {
                        reachedAt = now;
                    }
                    if (now - reachedAt >= settleMs) {
                        break;
                    }
                }
                if (toEnd && parts.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp))) {
                    break;
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    String key = r.key() == null ? "" : strings.deserialize(topic, r.key());
                    String value = r.value() == null ? "" : longValues ? String.valueOf(longs.deserialize(topic, r.value())) : strings.deserialize(topic, r.value());
                    out.println(r.partition() + "\t" + r.offset() + "\t" + key + "\t" + value);
                    read++;
                }
                out.flush();
            }
            Map<Integer, Long> endNow = new TreeMap<>();
            consumer.endOffsets(parts, Duration.ofSeconds(30)).forEach((tp, o) -> endNow.put(tp.partition(), o));
            Map<Integer, Long> positions = new TreeMap<>();
            for (TopicPartition tp : parts) {
                positions.put(tp.partition(), consumer.position(tp));
            }
            System.err.println("# read " + read + " records; end offsets " + endNow + "; positions " + positions);
        } catch (Exception e) {
            e.printStackTrace();
            out.flush();
            System.exit(1);
        }
    }

    /** The topic's partitions, waiting (until {@code deadline}) for the topic to exist. */
    private static List<TopicPartition> partitions(KafkaConsumer<?, ?> consumer, String topic, long deadline) throws InterruptedException {
        while (true) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
            if (infos != null && !infos.isEmpty()) {
                List<TopicPartition> parts = new ArrayList<>();
                for (PartitionInfo i : infos) {
                    parts.add(new TopicPartition(topic, i.partition()));
                }
                return parts;
            }
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("topic " + topic + " not found");
            }
            Thread.sleep(200);
        }
    }
}
