import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A transactional producer. Writes {@code --transactions N} transactions of {@code --records M}
 * records to {@code --topic}, record j of a transaction to partition {@code j % --partitions};
 * transaction i (from 0) is aborted when {@code --abort-every K} is above 0 and (i + 1) % K == 0,
 * committed otherwise. An aborted transaction's records are flushed (acknowledged, so in the log)
 * before the abort. Keys are {@code <txn-id>-<i>-<j>}, values {@code <txn-id>:<i>:<fate>:<j>} with
 * fate {@code commit}, {@code abort} or {@code hang}.
 *
 * <p>Prints, tab-separated, {@code REC fate partition offset key value} for each record once its
 * transaction has ended, then {@code TXN i committed|aborted}. With {@code --hang} it then begins
 * one more transaction (number N), sends M records, flushes them, prints their REC lines and
 * {@code HANGING}, and halts the JVM (no abort, no close: the transaction stays open on the broker
 * until its {@code --transaction-timeout-ms} runs out). Exits 0 once done, 1 on an error (with the
 * stack trace on stderr), 3 when halting.
 */
public final class TxnProducer {
    public static void main(String[] argv) throws Exception {
        Args a = new Args(argv);
        String topic = a.str("topic");
        String txnId = a.str("txn-id");
        int transactions = a.num("transactions", 10);
        int records = a.num("records", 10);
        int partitions = a.num("partitions", 1);
        int abortEvery = a.num("abort-every", 0);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.str("bootstrap"));
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, a.str("transaction-timeout-ms", "60000"));
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "txn-producer-" + txnId);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        PrintStream out = System.out;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            producer.initTransactions();
            for (int i = 0; i < transactions; i++) {
                boolean abort = abortEvery > 0 && (i + 1) % abortEvery == 0;
                producer.beginTransaction();
                List<Sent> sent = send(producer, topic, txnId, i, records, partitions, abort ? "abort" : "commit");
                if (abort) {
                    producer.flush();
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
                print(out, sent);
                out.println("TXN\t" + i + "\t" + (abort ? "aborted" : "committed"));
                out.flush();
            }
            if (a.flag("hang")) {
                producer.beginTransaction();
                List<Sent> sent = send(producer, topic, txnId, transactions, records, partitions, "hang");
                producer.flush();
                print(out, sent);
                out.println("HANGING");
                out.flush();
                Runtime.getRuntime().halt(3);
            }
        } catch (Exception e) {
            e.printStackTrace();
            out.flush();
            System.exit(1);
        }
    }

    private record Sent(String fate, String key, String value, Future<RecordMetadata> ack) {}

    private static List<Sent> send(KafkaProducer<String, String> producer, String topic, String txnId, int i, int records,
                                   int partitions, String fate) {
        List<Sent> sent = new ArrayList<>();
        for (int j = 0; j < records; j++) {
            String key = txnId + "-" + i + "-" + j;
            String value = txnId + ":" + i + ":" + fate + ":" + j;
            sent.add(new Sent(fate, key, value, producer.send(new ProducerRecord<>(topic, j % partitions, key, value))));
        }
        return sent;
    }

    private static void print(PrintStream out, List<Sent> sent) throws Exception {
        for (Sent s : sent) {
            RecordMetadata m = s.ack().get();
            out.println("REC\t" + s.fate() + "\t" + m.partition() + "\t" + m.offset() + "\t" + s.key() + "\t" + s.value());
        }
    }
}
