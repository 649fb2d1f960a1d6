from utils import training_log


def test_printed_numbers_are_python_2s_str_of_a_float():
    assert training_log.port_str(0.57386117875576019) == '0.573861178756'
    assert training_log.port_str(0.92756666926) == '0.92756666926'
    assert training_log.port_str(1.0) == '1.0'
    assert training_log.port_str(0.5) == '0.5'
    assert training_log.port_str(1e-13) == '1e-13'


def test_best_entry_is_the_latest_of_highest_validation_accuracy():
    log = [{'epoch': e, 'validation/main/accuracy': a,
            'test/main/accuracy': 0.5}
           for e, a in ((1, 0.9), (2, 0.95), (3, 0.93), (4, 0.95), (5, .9))]
    assert training_log.best_entry(log)['epoch'] == 4
    assert training_log.best_entry([{'epoch': 1,
                                     'validation/main/accuracy': 1}]) is None
